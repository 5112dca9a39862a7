-- Reconciliation at scale: drift items as rows of their own (written as a run finds them, read page by
-- page), a run's cursor and progress (so that a run whose worker died is resumed where it was), the
-- nightly run's scope (objects changed since), the run that fixes a dry run's findings, and what
-- started a run.

CREATE TABLE reconciliation_drift (
    run_id  text NOT NULL REFERENCES reconciliation_runs (id) ON DELETE CASCADE,
    seq     bigint GENERATED ALWAYS AS IDENTITY,  -- the report's order, and the drift_after cursor
    account text,           -- acct_…; NULL = the platform's own account
    kind    text NOT NULL,  -- customer, charge, refund, subscription, payment (held under a pi_/in_ id)
    object  text NOT NULL,  -- the Stripe id of the object whose field differs
    field   text NOT NULL,
    local   jsonb,
    stripe  jsonb,
    fixed   boolean NOT NULL DEFAULT false,
    PRIMARY KEY (run_id, seq),
    UNIQUE (run_id, object, field)  -- a resumed run that compares an object again records it once
);

-- The drift of the runs stored so far, in their report's order (their account is known only when
-- the run had one).
INSERT INTO reconciliation_drift (run_id, account, kind, object, field, local, stripe, fixed)
SELECT r.id, r.account,
       CASE split_part(d.item ->> 'object', '_', 1)
           WHEN 'cus' THEN 'customer' WHEN 'ch' THEN 'charge' WHEN 're' THEN 'refund'
           WHEN 'sub' THEN 'subscription' ELSE 'payment' END,
       d.item ->> 'object', d.item ->> 'field', d.item -> 'local', d.item -> 'stripe',
       COALESCE((d.item ->> 'fixed')::boolean, false)
FROM reconciliation_runs r
CROSS JOIN LATERAL jsonb_array_elements(r.drift) WITH ORDINALITY AS d (item, n)
WHERE d.item ->> 'object' IS NOT NULL AND d.item ->> 'field' IS NOT NULL
ORDER BY r.created_at, r.id, d.n
ON CONFLICT DO NOTHING;

ALTER TABLE reconciliation_runs
    ADD COLUMN changed_since timestamptz,  -- scope: objects an event named since this time (the nightly run)
    ADD COLUMN applies text REFERENCES reconciliation_runs (id),  -- the dry run whose drift this run fixes
    ADD COLUMN trigger text NOT NULL DEFAULT 'admin'
        CHECK (trigger IN ('admin', 'cli', 'nightly', 'weekly')),
    ADD COLUMN cursor jsonb,               -- where the run is: {"account", "kind", "after"} (resumed from here)
    ADD COLUMN progress jsonb NOT NULL DEFAULT '{}',  -- objects checked, by account and kind
    ADD COLUMN resumed integer NOT NULL DEFAULT 0;    -- times a worker took the run over from one that died

CREATE INDEX reconciliation_runs_finished ON reconciliation_runs (finished_at DESC) WHERE status = 'succeeded';
