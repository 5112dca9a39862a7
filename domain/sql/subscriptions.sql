-- Subscriptions, keyed by (account, Stripe subscription id). Used by domain/subscriptions.py.

-- name: lock
SELECT id, account, stripe_subscription_id, stripe_customer_id, customer_id, course_id, status, pause_collection,
       cancel_at_period_end, cancel_at, canceled_at, ended_at, current_period_end, stripe_created, stripe_rank
FROM subscriptions WHERE account = %(a)s AND stripe_subscription_id = %(s)s FOR UPDATE

-- name: insert
-- A new subscription; no row when another transaction created it first.
INSERT INTO subscriptions (account, stripe_subscription_id, stripe_customer_id, customer_id, course_id, status,
                           pause_collection, cancel_at_period_end, cancel_at, canceled_at, ended_at,
                           current_period_end, stripe_created, stripe_rank)
VALUES (%(a)s, %(stripe_subscription_id)s, %(stripe_customer_id)s, %(customer_id)s, %(course_id)s, %(status)s,
        %(pause_collection)s, %(cancel_at_period_end)s, %(cancel_at)s, %(canceled_at)s, %(ended_at)s,
        %(current_period_end)s, %(v_created)s, %(v_rank)s)
ON CONFLICT DO NOTHING
RETURNING id, account, stripe_subscription_id, stripe_customer_id, customer_id, course_id, status, pause_collection,
          cancel_at_period_end, cancel_at, canceled_at, ended_at, current_period_end, stripe_created, stripe_rank

-- name: update_state
-- The state of a newer snapshot; the customer, once known, stays; the course is the one the snapshot
-- states (a subscription moved to another price and course), else the one known, else the one remembered.
UPDATE subscriptions SET status = %(status)s, pause_collection = %(pause_collection)s,
    cancel_at_period_end = %(cancel_at_period_end)s, cancel_at = %(cancel_at)s, canceled_at = %(canceled_at)s,
    ended_at = %(ended_at)s, current_period_end = %(current_period_end)s,
    customer_id = COALESCE(customer_id, %(customer_id)s),
    course_id = COALESCE(%(stated_course)s, course_id, %(course_id)s),
    stripe_created = %(v_created)s, stripe_rank = %(v_rank)s, updated_at = now()
WHERE id = %(rid)s

-- name: fill
UPDATE subscriptions SET customer_id = COALESCE(customer_id, %(c)s), course_id = COALESCE(course_id, %(k)s)
WHERE id = %(rid)s

-- name: link_course
UPDATE subscriptions SET course_id = %(k)s
WHERE account = %(a)s AND course_id IS NULL AND stripe_subscription_id = ANY(%(ids)s)

-- name: find
SELECT id, account, stripe_subscription_id, stripe_customer_id, customer_id, course_id, status, pause_collection,
       cancel_at_period_end, cancel_at, canceled_at, ended_at, current_period_end, stripe_created, stripe_rank
FROM subscriptions WHERE stripe_subscription_id = %(s)s ORDER BY account

-- name: subscription_held
SELECT 1 FROM subscriptions WHERE account = %(a)s AND stripe_subscription_id = %(id)s
