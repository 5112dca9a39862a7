-- Payments (one row per charge, or a placeholder for a payment intent or invoice until its charge
-- arrives), their refunds (one per refund id), and what one payload teaches about another: the invoice
-- and subscription of a payment (payment_links), the course it pays for (course_hints). Used by
-- domain/payments.py, payment_links.py and courses.py.

-- name: lock_for_charge
-- A charge's own row, else a placeholder (no charge yet) for its payment intent, else for its invoice.
SELECT id, account, customer_id, stripe_customer_id, stripe_charge_id, stripe_payment_intent_id,
       stripe_invoice_id, stripe_subscription_id, course_id, amount, currency, charge_status, amount_refunded,
       status, created, stripe_created, stripe_rank
FROM payments
WHERE account = %(a)s AND (
      stripe_charge_id = %(charge)s
   OR (%(adopt)s AND stripe_charge_id IS NULL AND %(pi)s::text IS NOT NULL AND stripe_payment_intent_id = %(pi)s)
   OR (%(adopt)s AND stripe_charge_id IS NULL AND %(inv)s::text IS NOT NULL AND stripe_invoice_id = %(inv)s))
ORDER BY (stripe_charge_id IS NOT NULL) DESC, (stripe_payment_intent_id IS NOT NULL) DESC, id
LIMIT 1 FOR UPDATE

-- name: lock_for_reference
-- Any row a payment intent or invoice names, preferring a succeeded charge. A payload that says the
-- payment succeeded never lands on a failed or pending attempt of the same intent or invoice: it waits
-- in a placeholder for the charge that succeeded.
SELECT id, account, customer_id, stripe_customer_id, stripe_charge_id, stripe_payment_intent_id,
       stripe_invoice_id, stripe_subscription_id, course_id, amount, currency, charge_status, amount_refunded,
       status, created, stripe_created, stripe_rank
FROM payments
WHERE account = %(a)s AND (
      (%(pi)s::text IS NOT NULL AND stripe_payment_intent_id = %(pi)s)
   OR (%(inv)s::text IS NOT NULL AND stripe_invoice_id = %(inv)s))
  AND (NOT %(paid)s OR stripe_charge_id IS NULL OR charge_status = 'succeeded')
ORDER BY (charge_status = 'succeeded') DESC, (stripe_charge_id IS NOT NULL) DESC, id
LIMIT 1 FOR UPDATE

-- name: absorb_placeholders
-- Merge the placeholders of the target's payment intent or invoice into the target (their refunds go
-- with them); returns the rows merged away.
WITH gone AS (
    DELETE FROM payments
    WHERE account = %(a)s AND id <> %(target)s AND stripe_charge_id IS NULL
      AND ((%(pi)s::text IS NOT NULL AND stripe_payment_intent_id = %(pi)s)
        OR (%(inv)s::text IS NOT NULL AND stripe_invoice_id = %(inv)s))
    RETURNING id, account, customer_id, stripe_customer_id, stripe_charge_id, stripe_payment_intent_id,
              stripe_invoice_id, stripe_subscription_id, course_id, amount, currency, charge_status,
              amount_refunded, status, created, stripe_created, stripe_rank
), moved AS (
    UPDATE refunds SET payment_id = %(target)s WHERE payment_id IN (SELECT id FROM gone)
)
SELECT id, account, customer_id, stripe_customer_id, stripe_charge_id, stripe_payment_intent_id,
       stripe_invoice_id, stripe_subscription_id, course_id, amount, currency, charge_status, amount_refunded,
       status, created, stripe_created, stripe_rank
FROM gone

-- name: lock_by_charge
SELECT id, account, customer_id, stripe_customer_id, stripe_charge_id, stripe_payment_intent_id,
       stripe_invoice_id, stripe_subscription_id, course_id, amount, currency, charge_status, amount_refunded,
       status, created, stripe_created, stripe_rank
FROM payments WHERE account = %(a)s AND stripe_charge_id = %(c)s FOR UPDATE

-- name: insert
-- A new payment; no row when a concurrent transaction inserted the same key first.
INSERT INTO payments (account, customer_id, stripe_customer_id, stripe_charge_id, stripe_payment_intent_id,
                      stripe_invoice_id, stripe_subscription_id, course_id, amount, currency, charge_status,
                      status, created, stripe_created, stripe_rank)
VALUES (%(a)s, %(customer_id)s, %(stripe_customer_id)s, %(charge_id)s, %(payment_intent_id)s,
        %(invoice_id)s, %(subscription_id)s, %(course_id)s, COALESCE(%(amount)s, 0), %(currency)s,
        COALESCE(%(charge_status)s, 'succeeded'), COALESCE(%(charge_status)s, 'succeeded'), %(created)s,
        %(v_created)s, %(v_rank)s)
ON CONFLICT DO NOTHING
RETURNING id, account, customer_id, stripe_customer_id, stripe_charge_id, stripe_payment_intent_id,
          stripe_invoice_id, stripe_subscription_id, course_id, amount, currency, charge_status, amount_refunded,
          status, created, stripe_created, stripe_rank

-- name: update
-- {changes}: a `column = %(column)s` per column given, then set_version when the snapshot's version moves.
UPDATE payments SET {changes}, updated_at = now() WHERE id = %(pid)s

-- name: set_version
stripe_created = %(v_created)s, stripe_rank = %(v_rank)s

-- name: recompute
-- A payment's refunded total and status, derived from its refunds: those in a {counted} status count.
-- `updated_at` moves only when one of them changes (a refund applied again leaves the payment as it was).
UPDATE payments p SET
    amount_refunded = n.total,
    status = n.status,
    updated_at = CASE WHEN (p.amount_refunded, p.status) IS DISTINCT FROM (n.total, n.status) THEN now()
                      ELSE p.updated_at END
FROM (SELECT t.total,
             CASE WHEN q.charge_status <> 'succeeded' THEN q.charge_status
                  WHEN t.total <= 0 THEN 'succeeded'
                  WHEN t.total >= q.amount THEN 'refunded'
                  ELSE 'partially_refunded' END AS status
      FROM payments q,
           (SELECT COALESCE(sum(amount) FILTER (WHERE status IN ({counted})), 0) AS total
            FROM refunds WHERE payment_id = %(pid)s) t
      WHERE q.id = %(pid)s) n
WHERE p.id = %(pid)s
RETURNING p.amount_refunded, p.status

-- name: refunds_total
-- Every refund we know for a payment, whatever its status.
SELECT COALESCE(sum(amount), 0) FROM refunds WHERE payment_id = %(p)s

-- name: lock_refund
SELECT id, stripe_refund_id, payment_id, amount, status, reason, origin, stripe_created, stripe_rank
FROM refunds WHERE account = %(a)s AND stripe_refund_id = %(r)s FOR UPDATE

-- name: insert_refund
INSERT INTO refunds (account, stripe_refund_id, stripe_charge_id, payment_id, amount, currency, status,
                     reason, origin, stripe_created, stripe_rank)
VALUES (%(a)s, %(id)s, %(charge)s, %(pid)s, %(amount)s, %(currency)s, %(status)s, %(reason)s, %(origin)s,
        %(v_created)s, %(v_rank)s)
ON CONFLICT DO NOTHING
RETURNING id, stripe_refund_id, payment_id, amount, status, reason, origin, stripe_created, stripe_rank

-- name: update_refund
-- A refund Teachery asked for (an admin's) stays `teachery`, whoever reports on it later.
UPDATE refunds SET amount = %(amount)s, status = %(status)s, reason = %(reason)s,
    origin = CASE WHEN origin = 'teachery' THEN origin ELSE %(origin)s END,
    stripe_created = %(v_created)s, stripe_rank = %(v_rank)s, updated_at = now()
WHERE id = %(rid)s

-- name: move_refund
UPDATE refunds SET payment_id = %(pid)s, stripe_charge_id = %(charge)s, updated_at = now() WHERE id = %(rid)s

-- name: link_course
UPDATE payments SET course_id = %(course)s, updated_at = now()
WHERE account = %(a)s AND course_id IS NULL
  AND (stripe_charge_id = ANY(%(ids)s) OR stripe_payment_intent_id = ANY(%(ids)s)
       OR stripe_invoice_id = ANY(%(ids)s) OR stripe_subscription_id = ANY(%(ids)s))
RETURNING id, account, customer_id, stripe_customer_id, stripe_charge_id, stripe_payment_intent_id,
          stripe_invoice_id, stripe_subscription_id, course_id, amount, currency, charge_status, amount_refunded,
          status, created, stripe_created, stripe_rank

-- name: link_billing
-- A pure invoice placeholder keeps its key: it is never given a second invoice.
UPDATE payments SET stripe_invoice_id = COALESCE(stripe_invoice_id, %(inv)s),
    stripe_subscription_id = COALESCE(stripe_subscription_id, %(sub)s), updated_at = now()
WHERE account = %(a)s
  AND (stripe_charge_id = ANY(%(ids)s) OR stripe_payment_intent_id = ANY(%(ids)s) OR stripe_invoice_id = ANY(%(ids)s))
  AND ((stripe_invoice_id IS NULL AND %(inv)s::text IS NOT NULL)
       OR (stripe_subscription_id IS NULL AND %(sub)s::text IS NOT NULL))
RETURNING id, account, customer_id, stripe_customer_id, stripe_charge_id, stripe_payment_intent_id,
          stripe_invoice_id, stripe_subscription_id, course_id, amount, currency, charge_status, amount_refunded,
          status, created, stripe_created, stripe_rank

-- name: link_customer
UPDATE payments SET customer_id = %(cid)s
WHERE account = %(a)s AND stripe_customer_id = %(cus)s AND customer_id IS NULL

-- name: find_by_charge
SELECT id, account, customer_id, stripe_customer_id, stripe_charge_id, stripe_payment_intent_id,
       stripe_invoice_id, stripe_subscription_id, course_id, amount, currency, charge_status, amount_refunded,
       status, created, stripe_created, stripe_rank
FROM payments WHERE stripe_charge_id = %(c)s ORDER BY account

-- name: charge_held
SELECT 1 FROM payments WHERE account = %(a)s AND stripe_charge_id = %(id)s

-- name: remember_links
-- These objects belong to this invoice and subscription; what a link already says stays.
INSERT INTO payment_links (account, object_id, invoice_id, subscription_id)
SELECT %(a)s, o, CASE WHEN o = %(inv)s THEN NULL ELSE %(inv)s END, %(sub)s FROM unnest(%(ids)s::text[]) AS o
ON CONFLICT (account, object_id) DO UPDATE SET
    invoice_id = COALESCE(payment_links.invoice_id, EXCLUDED.invoice_id),
    subscription_id = COALESCE(payment_links.subscription_id, EXCLUDED.subscription_id)

-- name: recall_links
-- The invoice and subscription remembered for any of these objects (the subscription also through the invoice).
SELECT (array_agg(l.invoice_id) FILTER (WHERE l.invoice_id IS NOT NULL))[1] AS invoice_id,
       COALESCE((array_agg(l.subscription_id) FILTER (WHERE l.subscription_id IS NOT NULL))[1],
                (SELECT i.subscription_id FROM payment_links i WHERE i.account = %(a)s
                   AND i.object_id = (array_agg(l.invoice_id) FILTER (WHERE l.invoice_id IS NOT NULL))[1]))
           AS subscription_id
FROM payment_links l WHERE l.account = %(a)s AND l.object_id = ANY(%(ids)s)

-- name: remember_course
INSERT INTO course_hints (account, object_id, course_id)
SELECT %(a)s, unnest(%(ids)s::text[]), %(course)s ON CONFLICT DO NOTHING

-- name: replace_course
INSERT INTO course_hints (account, object_id, course_id) VALUES (%(a)s, %(id)s, %(course)s)
ON CONFLICT (account, object_id) DO UPDATE SET course_id = excluded.course_id

-- name: recall_course
-- The course remembered for the first of these objects that has one (they disagree when a subscription
-- moved to another course: its first invoice still paid for the old one), else from a subscription row we hold.
(SELECT h.course_id FROM unnest(%(ids)s::text[]) WITH ORDINALITY AS given(id, n)
   JOIN course_hints h ON h.account = %(a)s AND h.object_id = given.id ORDER BY given.n LIMIT 1)
UNION ALL (SELECT course_id FROM subscriptions WHERE account = %(a)s
  AND stripe_subscription_id = ANY(%(ids)s) AND course_id IS NOT NULL LIMIT 1)
LIMIT 1
