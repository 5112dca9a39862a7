-- What finished reconciliation runs say: when the last one that covered every account succeeded, and
-- the drift rows (reconciliation_drift) a run found, page by page and counted per account.
-- Used by domain/run_history.py.

-- name: last_full_start
-- When the latest succeeded run that covered every account started: every account and customer, every
-- object (no `since`), fixing (not a dry run), not the fixing of one dry run's findings (`applies`).
SELECT max(started_at) FROM reconciliation_runs
WHERE status = 'succeeded' AND account IS NULL AND customer IS NULL AND since IS NULL
  AND NOT dry_run AND applies IS NULL

-- name: last_full_successes
-- The same runs: when the latest of each trigger finished (reads the partial index reconciliation_runs_finished).
SELECT trigger, max(finished_at) AS finished_at FROM reconciliation_runs
WHERE status = 'succeeded' AND account IS NULL AND customer IS NULL AND since IS NULL
  AND NOT dry_run AND applies IS NULL
GROUP BY trigger

-- name: latest_covering
-- The latest succeeded run of every customer, per account scope (account NULL: the run of every account).
SELECT DISTINCT ON (account) id, account, finished_at FROM reconciliation_runs
WHERE status = 'succeeded' AND customer IS NULL
ORDER BY account, finished_at DESC

-- name: drift_objects
-- Distinct drifted objects per (run, account) of these runs (account NULL: the platform's own).
SELECT run_id, account, count(DISTINCT object) AS objects FROM reconciliation_drift
WHERE run_id = ANY(%(runs)s)
GROUP BY run_id, account

-- name: drift_page
-- A run's drift rows after `after` (a seq), in the report's order.
SELECT seq, account, kind, object, field, local, stripe, fixed FROM reconciliation_drift
WHERE run_id = %(run_id)s AND seq > %(after)s
ORDER BY seq LIMIT %(limit)s

-- name: record_drift
INSERT INTO reconciliation_drift (run_id, account, kind, object, field, local, stripe, fixed)
VALUES (%(run_id)s, %(account)s, %(kind)s, %(object)s, %(field)s, %(local)s, %(stripe)s, %(fixed)s)
ON CONFLICT (run_id, object, field) DO UPDATE SET fixed = EXCLUDED.fixed
