-- revision: 002
-- down_revision: 001
-- message: server settings table
-- created: 2026-11-22T10:05:00Z

-- migrate:up
CREATE TABLE server_settings (
    key         text PRIMARY KEY,
    value       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- migrate:down
DROP TABLE server_settings;
