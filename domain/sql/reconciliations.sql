-- Reconciliation runs (their scope, status and report), and our side of each comparison with Stripe.
-- Used by domain/reconciliations.py.

-- name: create
INSERT INTO reconciliation_runs (dry_run, account, customer, since, changed_since, applies, trigger)
VALUES (%(dry_run)s, %(account)s, %(customer)s, %(since)s, %(changed_since)s, %(applies)s, %(trigger)s)
RETURNING id

-- name: lock_runs
-- Held while a run is checked against the others and queued.
SELECT pg_advisory_xact_lock(hashtext('reconciliation-runs'))

-- name: active_in_scope
-- A run of exactly this scope (null = "every") that is queued or running; a run applying a dry run is
-- of that dry run's scope only.
SELECT id FROM reconciliation_runs
WHERE status IN ('queued', 'running')
  AND account IS NOT DISTINCT FROM %(account)s AND customer IS NOT DISTINCT FROM %(customer)s
  AND since IS NOT DISTINCT FROM %(since)s AND changed_since IS NOT DISTINCT FROM %(changed_since)s
  AND applies IS NOT DISTINCT FROM %(applies)s AND dry_run = %(dry_run)s
ORDER BY created_at LIMIT 1

-- name: count_queued
SELECT count(*) FROM reconciliation_runs WHERE status = 'queued'

-- name: fail_queued
UPDATE reconciliation_runs SET status = 'failed', finished_at = now(), error = %(error)s
WHERE id = %(id)s AND status = 'queued'
RETURNING id

-- name: queued_before
SELECT id FROM reconciliation_runs WHERE status = 'queued' AND created_at < now() - make_interval(secs => %(s)s)

-- name: claim
-- Only a queued run starts: a second copy of its job finds it running or finished and does nothing. A
-- resumed run keeps its first start.
UPDATE reconciliation_runs SET status = 'running', started_at = COALESCE(started_at, now())
WHERE id = %(id)s AND status = 'queued'
RETURNING id, status, dry_run, account, customer, since, changed_since, applies, trigger, started_at, finished_at,
       checked, fixed, cursor, progress, resumed, error

-- name: get
SELECT id, status, dry_run, account, customer, since, changed_since, applies, trigger, started_at, finished_at,
       checked, fixed, cursor, progress, resumed, error
FROM reconciliation_runs WHERE id = %(id)s

-- name: advance
-- Where one lane of the run is (an account, read side by side with the others), in the transaction that
-- records a page's drift: that lane resumes from here. `checked` and `fixed` grow by the page's; `progress`
-- takes the lane's own accounts' counts (no other lane writes them).
UPDATE reconciliation_runs
SET cursor = jsonb_set(CASE WHEN cursor ? 'lanes' THEN cursor ELSE '{"lanes": {}}'::jsonb END,
                       ARRAY['lanes', %(lane)s], %(at)s),
    checked = checked + %(checked)s, progress = COALESCE(progress, '{}'::jsonb) || %(progress)s,
    fixed = fixed + %(fixed)s
WHERE id = %(id)s

-- name: set_cursor
UPDATE reconciliation_runs SET cursor = %(cursor)s WHERE id = %(id)s

-- name: requeue
-- A run whose worker stopped goes back to the queue, to be resumed from its cursor (unless it was resumed
-- `max` times already: then it is answered 'gave up', and left to be ended failed).
UPDATE reconciliation_runs SET status = CASE WHEN resumed < %(max)s THEN 'queued' ELSE status END,
    resumed = resumed + CASE WHEN resumed < %(max)s THEN 1 ELSE 0 END
WHERE id = %(id)s AND status = 'running'
RETURNING CASE WHEN status = 'queued' THEN 'queued' ELSE 'gave up' END

-- name: finish
UPDATE reconciliation_runs SET status = %(status)s, finished_at = now(), error = %(error)s,
    started_at = COALESCE(started_at, now())
WHERE id = %(id)s

-- name: running
SELECT id FROM reconciliation_runs WHERE status = 'running'

-- name: hold
-- A job running a reconciliation holds this session-level lock on a connection of its own; PostgreSQL
-- releases it when that connection goes, so a run left `running` by a killed worker is found: nobody
-- holds its lock.
SELECT pg_advisory_lock(hashtext('reconciliation:' || %(id)s))

-- name: try_hold
SELECT pg_try_advisory_lock(hashtext('reconciliation:' || %(id)s))

-- name: release
SELECT pg_advisory_unlock(hashtext('reconciliation:' || %(id)s))

-- name: local_customer
-- Our side of the comparison: the compared fields of our rows of one kind, keyed by Stripe id.
SELECT stripe_customer_id AS id, name, email, deleted_in_stripe, stripe_created FROM customers
WHERE account = %(a)s AND stripe_customer_id = ANY(%(ids)s)

-- name: local_subscription
SELECT stripe_subscription_id AS id, status, pause_collection, cancel_at_period_end, cancel_at, canceled_at,
       ended_at, current_period_end, stripe_created
FROM subscriptions WHERE account = %(a)s AND stripe_subscription_id = ANY(%(ids)s)

-- name: local_charge
-- Our payment of each Stripe charge (ids, with the charge's payment intent, invoice and whether it
-- succeeded, element by element): the charge's own row, else, for a succeeded charge, the placeholder
-- (a payment without a charge yet) of its payment intent or of its invoice (the one the charge names or
-- a payload taught us, payment_links), as lock_for_charge finds the row a charge takes over.
SELECT DISTINCT ON (w.id) w.id, p.id AS row_id, p.stripe_charge_id, p.amount, p.currency,
       p.charge_status AS status, p.amount_refunded, p.stripe_created
FROM unnest(%(ids)s::text[], %(pis)s::text[], %(invs)s::text[], %(adopt)s::bool[]) AS w(id, pi, inv, adopt)
LEFT JOIN LATERAL (SELECT l.invoice_id FROM payment_links l
                   WHERE l.account = %(a)s AND l.object_id IN (w.id, w.pi) AND l.invoice_id IS NOT NULL
                   LIMIT 1) known ON true
JOIN payments p ON p.account = %(a)s AND (
      p.stripe_charge_id = w.id
   OR (w.adopt AND p.stripe_charge_id IS NULL
       AND (p.stripe_payment_intent_id = w.pi OR p.stripe_invoice_id = COALESCE(w.inv, known.invoice_id))))
ORDER BY w.id, (p.stripe_charge_id IS NOT NULL) DESC, (p.stripe_payment_intent_id IS NOT NULL) DESC, p.id

-- name: local_payment
-- Our payment of a payment intent or invoice (the `payment` kind: placeholders), whether still a
-- placeholder or taken over by its charge since: a succeeded one first.
SELECT DISTINCT ON (w.id) w.id, p.id AS row_id, p.stripe_charge_id, p.amount, p.charge_status AS status,
       p.stripe_created
FROM unnest(%(ids)s::text[]) AS w(id)
JOIN payments p ON p.account = %(a)s AND (p.stripe_payment_intent_id = w.id OR p.stripe_invoice_id = w.id)
ORDER BY w.id, (p.charge_status = 'succeeded') DESC, (p.stripe_charge_id IS NOT NULL) DESC, p.id

-- name: placeholders
-- The payments we hold only under a payment intent or invoice (no charge yet), in scope, but for the
-- rows listed charges matched: the payment intent's id, else the invoice's, a page after `after` in id order.
SELECT COALESCE(stripe_payment_intent_id, stripe_invoice_id) AS object FROM payments
WHERE account = %(a)s AND stripe_charge_id IS NULL
  AND (%(cus)s::text IS NULL OR stripe_customer_id = %(cus)s)
  AND (%(since)s::timestamptz IS NULL OR created >= %(since)s)
  AND NOT id = ANY(%(matched)s::bigint[])
  AND COALESCE(stripe_payment_intent_id, stripe_invoice_id) > %(after)s
ORDER BY 1
LIMIT %(limit)s

-- name: local_refund
SELECT stripe_refund_id AS id, amount, status, stripe_created FROM refunds
WHERE account = %(a)s AND stripe_refund_id = ANY(%(ids)s)

-- name: unlisted_customers
-- Customers we hold as live that the run's listing did not show (deleted in Stripe, perhaps), a page
-- after `after` in id order (the listing's ids are the run's reconciliation_seen rows). The seen row is a
-- scalar subquery on purpose: PostgreSQL never turns it into a join, so each customer walked in key order
-- probes reconciliation_seen's primary key once (linear in our customers, whatever the statistics say).
-- As NOT EXISTS it became an anti join planned from reconciliation_seen's statistics, which say "empty"
-- until the table is analyzed: a nested loop over a materialized scan, quadratic (11-14 s an account
-- at 100,000 objects).
SELECT c.stripe_customer_id FROM customers c
WHERE c.account = %(a)s AND NOT c.deleted_in_stripe
  AND (%(cus)s::text IS NULL OR c.stripe_customer_id = %(cus)s) AND c.stripe_customer_id > %(after)s
  AND (SELECT true FROM reconciliation_seen s WHERE s.run_id = %(run)s AND s.account = %(a)s
       AND s.kind = 'customer' AND s.object = c.stripe_customer_id) IS NULL
ORDER BY c.stripe_customer_id
LIMIT %(limit)s

-- name: local_counts
-- How many rows of each kind we hold in these accounts (created since, when given): a run's size, guessed.
SELECT (SELECT count(*) FROM customers WHERE account = ANY(%(a)s) AND stripe_created >= %(since)s) AS customer,
       (SELECT count(*) FROM payments WHERE account = ANY(%(a)s) AND stripe_created >= %(since)s) AS charge,
       (SELECT count(*) FROM refunds WHERE account = ANY(%(a)s) AND stripe_created >= %(since)s) AS refund,
       (SELECT count(*) FROM subscriptions WHERE account = ANY(%(a)s) AND stripe_created >= %(since)s)
           AS subscription

-- name: recent
-- The newest runs first, a page at a time: those created before %(before)s (a run id; null: the newest).
-- %(account)s: the runs of that account only (acct_… or 'platform': a scoped admin token's), null: all.
SELECT id, status, dry_run, account, customer, since, changed_since, applies, trigger, started_at, finished_at,
       checked, fixed, cursor, progress, resumed, error
FROM reconciliation_runs
WHERE (%(before)s::text IS NULL
       OR (created_at, id) < (SELECT created_at, id FROM reconciliation_runs WHERE id = %(before)s))
  AND (%(account)s::text IS NULL OR account = %(account)s)
ORDER BY created_at DESC, id DESC LIMIT %(limit)s
