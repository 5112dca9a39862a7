-- The admin actions log: one row per admin request that changes something, keyed by its idempotency
-- key. Used by domain/admin_actions.py.

-- name: start
-- A new action, started; no row when its idempotency key is already taken.
INSERT INTO admin_actions (kind, target, account, params, idempotency_key, actor)
VALUES (%(kind)s, %(target)s, %(account)s, %(params)s, %(key)s, %(actor)s)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id, kind, target, account, params, idempotency_key, outcome, error, status_code, response, actor

-- name: lock_by_key
SELECT id, kind, target, account, params, idempotency_key, outcome, error, status_code, response, actor
FROM admin_actions WHERE idempotency_key = %(key)s FOR UPDATE

-- name: restart
UPDATE admin_actions SET outcome = 'started', error = NULL, status_code = NULL, response = NULL, finished_at = NULL
WHERE id = %(id)s

-- name: finish
UPDATE admin_actions SET outcome = %(outcome)s, status_code = %(status)s, response = %(response)s,
    error = %(error)s, finished_at = now()
WHERE id = %(id)s
