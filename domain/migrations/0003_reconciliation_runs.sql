-- Reconciliation runs: one row per run (queued by the admin API or run by `teachery-sync reconcile`),
-- with its scope and, once finished, its report.

CREATE TABLE reconciliation_runs (
    id          text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    status      text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    dry_run     boolean NOT NULL DEFAULT false,
    account     text,         -- scope: one connected account (acct_…); NULL = the platform and every known one
    customer    text,         -- scope: one Stripe customer (cus_…)
    since       timestamptz,  -- scope: objects created at or after
    created_at  timestamptz NOT NULL DEFAULT now(),
    started_at  timestamptz,
    finished_at timestamptz,
    checked     integer NOT NULL DEFAULT 0,
    fixed       integer NOT NULL DEFAULT 0,
    drift       jsonb NOT NULL DEFAULT '[]',
    error       text
);
CREATE INDEX reconciliation_runs_created ON reconciliation_runs (created_at DESC);
