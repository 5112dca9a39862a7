-- The customer profile and customer search, as the admin API shows them. Used by domain/profiles.py.

-- name: profile
-- The whole customer profile in one round trip, as JSON. {customer}: which (customer_by_id or
-- customer_by_stripe_id).
SELECT json_build_object(
    'id', c.id,
    'account', NULLIF(c.account, ''),
    'stripe_customer_id', c.stripe_customer_id,
    'name', c.name,
    'email', c.email,
    'deleted_in_stripe', c.deleted_in_stripe,
    'enrollments', COALESCE((
        SELECT json_agg(json_build_object(
            'course_id', e.course_id, 'access', e.access,
            'granted_at', iso_utc(e.granted_at), 'revoked_at', iso_utc(e.revoked_at)) ORDER BY e.granted_at, e.id)
        FROM enrollments e WHERE e.customer_id = c.id), '[]'::json),
    'payments', COALESCE((
        SELECT json_agg(json_build_object(
            'stripe_charge_id', p.stripe_charge_id,
            'stripe_payment_intent_id', p.stripe_payment_intent_id,
            'stripe_invoice_id', p.stripe_invoice_id,
            'stripe_subscription_id', p.stripe_subscription_id,
            'course_id', p.course_id,
            'amount', p.amount, 'currency', p.currency,
            'amount_refunded', p.amount_refunded,
            'status', p.status,
            'created', iso_utc(p.created),
            'refunds', COALESCE((
                SELECT json_agg(json_build_object(
                    'stripe_refund_id', r.stripe_refund_id, 'amount', r.amount, 'status', r.status,
                    'reason', r.reason, 'origin', r.origin) ORDER BY r.stripe_created, r.id)
                FROM refunds r WHERE r.payment_id = p.id), '[]'::json)
        ) ORDER BY p.created, p.id)
        FROM payments p WHERE p.customer_id = c.id), '[]'::json),
    'subscriptions', COALESCE((
        SELECT json_agg(json_build_object(
            'stripe_subscription_id', s.stripe_subscription_id,
            'course_id', s.course_id,
            'status', s.status,
            'pause_collection', s.pause_collection,
            'cancel_at_period_end', s.cancel_at_period_end,
            'cancel_at', iso_utc(s.cancel_at),
            'canceled_at', iso_utc(s.canceled_at),
            'ended_at', iso_utc(s.ended_at),
            'current_period_end', iso_utc(s.current_period_end)) ORDER BY s.id)
        FROM subscriptions s WHERE s.customer_id = c.id), '[]'::json),
    'activity', COALESCE((
        SELECT json_agg(json_build_object(
            'at', iso_utc(a.at), 'kind', a.kind, 'message', a.message, 'origin', a.origin,
            'stripe_event_id', a.stripe_event_id, 'actor', a.actor) ORDER BY a.at, a.id)
        FROM activity a WHERE a.customer_id = c.id), '[]'::json)
)
FROM customers c
WHERE {customer}

-- name: customer_by_id
c.id = %(id)s

-- name: customer_by_stripe_id
c.account = %(account)s AND c.stripe_customer_id = %(cus)s

-- name: search
-- One page of the customers whose name or email contains %(p)s (a LIKE pattern of lowered text),
-- sorted by name (else email), then id; the page starts after the key (%(after_order)s, %(after_id)s):
-- ('', '') for the first page. search_text (migration 0014) holds both fields, lowered: its trigram
-- index, or the (search_order, id) index for a common pattern, finds the rows; the recheck of each field
-- keeps the rule exact. search_order is returned: the next page's key. %(account)s: that account's
-- customers only (a scoped admin token), null: every account's.
SELECT id, NULLIF(account, '') AS account, stripe_customer_id, name, email, search_order FROM customers
WHERE search_text LIKE %(p)s AND (lower(name) LIKE %(p)s OR lower(email) LIKE %(p)s)
  AND (%(account)s::text IS NULL OR account = %(account)s)
  AND (search_order, id) > (%(after_order)s, %(after_id)s)
ORDER BY search_order, id LIMIT %(limit)s
