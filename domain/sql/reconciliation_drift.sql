-- A reconciliation run's drift items (reconciliation_drift, in the report's `seq` order) and the objects
-- it has listed or read (reconciliation_seen). Used by domain/reconciliation_drift.py.

-- name: record
-- A drift item found; a resumed run that compares an object again records it once.
INSERT INTO reconciliation_drift (run_id, account, kind, object, field, local, stripe)
SELECT %(run)s, %(account)s, %(kind)s, i.object, i.field, i.local, i.stripe
FROM jsonb_to_recordset(%(items)s) AS i (object text, field text, local jsonb, stripe jsonb)
ON CONFLICT (run_id, object, field) DO NOTHING

-- name: recorded
-- The drift items a run recorded for these objects, as they were found.
SELECT object, field, fixed FROM reconciliation_drift
WHERE run_id = %(run)s AND account IS NOT DISTINCT FROM %(account)s AND object = ANY(%(ids)s)
ORDER BY seq

-- name: mark_fixed
-- The items of these objects that no longer differ (`still`: "object field" pairs that do) are fixed;
-- answers one row per item newly marked.
UPDATE reconciliation_drift SET fixed = true
WHERE run_id = %(run)s AND account IS NOT DISTINCT FROM %(account)s AND object = ANY(%(ids)s) AND NOT fixed
  AND NOT (object || ' ' || field = ANY(%(still)s))
RETURNING seq

-- name: page
-- The report's drift, `limit` items after `after` (keyset on the primary key).
SELECT seq, account, kind, object, field, local, stripe, fixed FROM reconciliation_drift
WHERE run_id = %(run)s AND seq > %(after)s
ORDER BY seq
LIMIT %(limit)s

-- name: page_by_object
-- The run's drift, `limit` items after the (object, field) pair `after`, an object's fields together
-- (keyset on the run's unique (object, field)): lanes recording at once interleave their rows' `seq`.
SELECT seq, account, kind, object, field, local, stripe, fixed FROM reconciliation_drift
WHERE run_id = %(run)s AND (object, field) > (%(object)s, %(field)s)
ORDER BY object, field
LIMIT %(limit)s

-- name: count
SELECT count(*) FROM reconciliation_drift WHERE run_id = %(run)s

-- name: objects
-- A run's drifted objects of one kind, a page after (account, object), for the run that applies it.
SELECT DISTINCT COALESCE(account, '') AS account, object FROM reconciliation_drift
WHERE run_id = %(run)s AND kind = %(kind)s AND (COALESCE(account, ''), object) > (%(account)s, %(after)s)
ORDER BY 1, 2
LIMIT %(limit)s

-- name: see
-- Objects the run has listed or read.
INSERT INTO reconciliation_seen (run_id, account, kind, object)
SELECT %(run)s, %(account)s, %(kind)s, unnest(%(ids)s::text[])
ON CONFLICT DO NOTHING

-- name: seen
-- Which of these objects the run has listed or read already.
SELECT object FROM reconciliation_seen
WHERE run_id = %(run)s AND account = %(account)s AND kind = %(kind)s AND object = ANY(%(ids)s)

-- name: seen_all
-- Every object of one kind the run has recorded as seen in an account (a few: the placeholders its
-- charges matched).
SELECT object FROM reconciliation_seen WHERE run_id = %(run)s AND account = %(account)s AND kind = %(kind)s

-- name: forget
-- A finished run's seen objects: needed only while it runs (or may be resumed).
DELETE FROM reconciliation_seen WHERE run_id = %(run)s
