-- Streaming reconciliation runs: the objects a run has listed or read, kept as rows of the run instead of
-- a set in memory (the customers a listing showed, so that the ones Stripe no longer lists are found by
-- a keyset query; the objects the events of a changed-since run named, so that each is read once), an
-- index to read a dry run's drift objects kind by kind (a run applying it), and the run's drift now only
-- as rows of reconciliation_drift (migration 0010 copied the jsonb there).

CREATE TABLE reconciliation_seen (
    run_id  text NOT NULL REFERENCES reconciliation_runs (id) ON DELETE CASCADE,
    account text NOT NULL,  -- '' = the platform's own account
    kind    text NOT NULL,  -- customer, charge, refund, subscription; placeholder: a payments row id
    object  text NOT NULL,  -- the Stripe id
    PRIMARY KEY (run_id, account, kind, object)
);

CREATE INDEX reconciliation_drift_objects ON reconciliation_drift (run_id, kind, COALESCE(account, ''), object);

ALTER TABLE reconciliation_runs DROP COLUMN drift;
