-- revision: 003
-- down_revision: 002
-- message: api keys for authentication
-- created: 2026-11-22T10:10:00Z

-- migrate:up
CREATE TABLE api_keys (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL,
    key_hash      text NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);

CREATE INDEX api_keys_active_idx ON api_keys (created_at) WHERE revoked_at IS NULL;

-- migrate:down
DROP TABLE api_keys;
