-- revision: 004
-- down_revision: 003
-- message: hnsw index on chunk embeddings
-- created: 2026-11-22T10:15:00Z
-- transactional: false
--
-- CREATE INDEX CONCURRENTLY cannot run inside a transaction, so this script is marked
-- non-transactional. retort commits what came before and sends each statement on its own.
-- On a large table the build needs memory, given for this session only and reset after.
-- No IF NOT EXISTS: after a failed build it would skip the INVALID index left behind.

-- migrate:up
SET maintenance_work_mem = '256MB';
CREATE INDEX CONCURRENTLY chunks_embedding_hnsw_idx
    ON chunks USING hnsw (embedding vector_cosine_ops)
    WITH (m = 16, ef_construction = 64);
RESET maintenance_work_mem;

-- migrate:down
DROP INDEX CONCURRENTLY IF EXISTS chunks_embedding_hnsw_idx;
