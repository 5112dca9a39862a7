-- What the console's reconciliation pages read besides a run's own row and drift: drift counts of a page
-- of runs, the runs applying a dry run, and whose drift a drift item is. Used by
-- domain/reconciliation_views.py.

-- name: drift_counts
-- How many drift items each of these runs recorded, counted up to %(cap)s (a page of fifty runs of a
-- million items each would otherwise count fifty million index entries); the primary key's index.
SELECT r.id, (SELECT count(*) FROM (SELECT 1 FROM reconciliation_drift d WHERE d.run_id = r.id LIMIT %(cap)s) AS first_items)
    AS drift
FROM unnest(%(ids)s::text[]) AS r (id)

-- name: applied_by
-- The fixing runs that apply this dry run, newest first.
SELECT id, status FROM reconciliation_runs WHERE applies = %(id)s ORDER BY created_at DESC, id DESC LIMIT 20

-- name: customers_of
-- Our customer (id and Stripe id) of each of these drift items, when we hold the object or its customer:
-- a customer itself, a subscription's, a payment's (by charge, payment intent or invoice id) or a refund's
-- payment's.
SELECT d.seq, c.id AS customer_id, c.stripe_customer_id, c.name, c.email
FROM reconciliation_drift d
CROSS JOIN LATERAL (
    SELECT CASE d.kind
        WHEN 'customer' THEN (SELECT id FROM customers
                              WHERE account = COALESCE(d.account, '') AND stripe_customer_id = d.object)
        WHEN 'subscription' THEN (SELECT customer_id FROM subscriptions
                                  WHERE account = COALESCE(d.account, '') AND stripe_subscription_id = d.object)
        WHEN 'charge' THEN (SELECT customer_id FROM payments
                            WHERE account = COALESCE(d.account, '') AND stripe_charge_id = d.object)
        WHEN 'payment' THEN (SELECT customer_id FROM payments
                             WHERE account = COALESCE(d.account, '')
                               AND (stripe_payment_intent_id = d.object OR stripe_invoice_id = d.object)
                             ORDER BY id LIMIT 1)
        WHEN 'refund' THEN (SELECT p.customer_id FROM refunds r JOIN payments p ON p.id = r.payment_id
                            WHERE r.account = COALESCE(d.account, '') AND r.stripe_refund_id = d.object)
    END AS customer_id
) AS owner
JOIN customers c ON c.id = owner.customer_id
WHERE d.run_id = %(run)s AND d.seq = ANY(%(seqs)s)
