-- The migration runner's own bookkeeping: schema_migrations, and the lock that makes concurrent runs
-- safe. Used by domain/migrate.py.

-- name: lock
SELECT pg_advisory_lock(%(key)s)

-- name: unlock
SELECT pg_advisory_unlock(%(key)s)

-- name: create_table
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)

-- name: applied
SELECT version FROM schema_migrations

-- name: record
INSERT INTO schema_migrations (version, name) VALUES (%(version)s, %(name)s)
