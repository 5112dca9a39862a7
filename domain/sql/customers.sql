-- Customers (never deleted), their enrollments (access to a course), the activity log of every change
-- to their records, and the outbox of emails to them. Used by domain/customers.py, enrollments.py,
-- activity.py and outbox.py.

-- name: lock
SELECT id, account, stripe_customer_id, name, email, deleted_in_stripe, stripe_created, stripe_rank
FROM customers WHERE account = %(a)s AND stripe_customer_id = %(c)s FOR UPDATE

-- name: get
SELECT id, account, stripe_customer_id, name, email, deleted_in_stripe, stripe_created, stripe_rank
FROM customers WHERE id = %(id)s

-- name: insert
-- A new customer; no row when another transaction created it first.
INSERT INTO customers (account, stripe_customer_id, name, email, deleted_in_stripe, stripe_created, stripe_rank)
VALUES (%(a)s, %(c)s, %(name)s, %(email)s, %(deleted)s, %(created)s, %(rank)s)
ON CONFLICT DO NOTHING
RETURNING id, account, stripe_customer_id, name, email, deleted_in_stripe, stripe_created, stripe_rank

-- name: update
-- A version of NULL keeps the stored one.
UPDATE customers SET name = %(name)s, email = %(email)s, deleted_in_stripe = %(deleted)s,
    stripe_created = COALESCE(%(created)s, stripe_created), stripe_rank = COALESCE(%(rank)s, stripe_rank),
    updated_at = now()
WHERE id = %(id)s

-- name: customer_held
SELECT 1 FROM customers WHERE account = %(a)s AND stripe_customer_id = %(id)s

-- name: remember_course
INSERT INTO courses (account, course_id) VALUES (%(a)s, %(course)s) ON CONFLICT DO NOTHING

-- name: grant_for_purchase
-- A purchase's enrollment, when there is none; an existing one (even revoked) is left as it is.
INSERT INTO enrollments (customer_id, course_id, access, granted_at)
VALUES (%(c)s, %(course)s, 'active', COALESCE(%(at)s, now()))
ON CONFLICT (customer_id, course_id) DO NOTHING
RETURNING id

-- name: date_back_grant
-- An imported purchase older than the one that granted access: the access dates from the first purchase,
-- as it would had the purchases' events arrived in order. Only access no admin has revoked since.
UPDATE enrollments SET granted_at = %(at)s
WHERE customer_id = %(c)s AND course_id = %(course)s AND access = 'active' AND revoked_at IS NULL
  AND granted_at > %(at)s

-- name: lock_enrollment
SELECT customer_id, course_id, access, granted_at, revoked_at
FROM enrollments WHERE customer_id = %(c)s AND course_id = %(course)s FOR UPDATE

-- name: revoke
UPDATE enrollments SET access = 'revoked', revoked_at = now()
WHERE customer_id = %(c)s AND course_id = %(course)s AND access = 'active'
RETURNING customer_id, course_id, access, granted_at, revoked_at

-- name: grant
INSERT INTO enrollments (customer_id, course_id, access) VALUES (%(c)s, %(course)s, 'active')
ON CONFLICT (customer_id, course_id) DO UPDATE SET access = 'active', revoked_at = NULL
    WHERE enrollments.access = 'revoked'
RETURNING customer_id, course_id, access, granted_at, revoked_at

-- name: active_courses
SELECT course_id FROM enrollments WHERE customer_id = %(c)s AND access = 'active' ORDER BY granted_at, id

-- name: write_activity
-- Entries in one statement (a column per array), in the order they were noted; `at` NULL means now.
INSERT INTO activity (customer_id, account, at, kind, message, origin, stripe_event_id, record_type, record_id, actor)
SELECT customer_id, account, COALESCE(at, now()), kind, message, origin, stripe_event_id, record_type, record_id,
       actor
FROM unnest(%(customer_id)s::text[], %(account)s::text[], %(at)s::timestamptz[], %(kind)s::text[],
            %(message)s::text[], %(origin)s::text[], %(stripe_event_id)s::text[], %(record_type)s::text[],
            %(record_id)s::text[], %(actor)s::text[])
    WITH ORDINALITY AS e(customer_id, account, at, kind, message, origin, stripe_event_id, record_type,
                         record_id, actor, n)
ORDER BY n

-- name: add_to_outbox
INSERT INTO outbox (kind, customer_id, admin_action_id, to_address, subject, payload)
VALUES (%(kind)s, %(c)s, %(action)s, %(to)s, %(subject)s, %(payload)s)
RETURNING id
