-- The event ledger: events (every Stripe event we received, once per id), event_attempts (every
-- attempt at one) and accounts (every account we have seen). Used by domain/ledger.py.

-- name: record_events
-- Several events in one statement (and so one commit): the receiver's group commit writes the webhooks
-- in flight together. {accounts}: an account_row per account, {events}: an event_row per event, their
-- fields filled with positional placeholders (why: domain/ledger.py). The bodies go as plain parameters
-- (PostgreSQL parses each into jsonb), which costs far less than quoting them into arrays.
WITH acct AS (
    INSERT INTO accounts (id) VALUES {accounts} ON CONFLICT DO NOTHING
)
INSERT INTO events (id, account, type, api_version, created, payload, source)
VALUES {events}
ON CONFLICT (id) DO NOTHING
RETURNING id

-- name: account_row
({account})

-- name: event_row
({id}, {account}, {type}, {api_version}, {created}, {payload}::jsonb, {source})

-- name: never_started
SELECT id FROM events WHERE id = ANY(%(ids)s) AND status = 'received'

-- name: get_event
SELECT id, account, type, api_version, created, status, attempts, last_error, waiting_on, received_at,
       processed_at, next_attempt_at, scheduled_attempts, source
FROM events WHERE id = %(id)s

-- name: get_event_with_payload
SELECT id, account, type, api_version, created, status, attempts, last_error, waiting_on, received_at,
       processed_at, next_attempt_at, scheduled_attempts, source, payload
FROM events WHERE id = %(id)s

-- name: list_events
-- The ledger, newest first. {filters}: the filter_* pieces asked for, joined by AND (TRUE for none).
SELECT id, account, type, api_version, created, status, attempts, last_error, waiting_on, received_at,
       processed_at, next_attempt_at, scheduled_attempts, source
FROM events
WHERE {filters}
ORDER BY received_at DESC, id DESC LIMIT %(limit)s

-- name: ids_matching_page
-- The ids of the events that match, in Stripe's order, a page at a time: those after the key (%(after_created)s, %(after_received)s, %(after_id)s)
-- in Stripe's order (a bulk replay pages through them, however many there are). {filters}: as in list_events.
SELECT id, created, received_at FROM events
WHERE {filters} AND (created, received_at, id) > (%(after_created)s, %(after_received)s, %(after_id)s)
ORDER BY created, received_at, id LIMIT %(limit)s

-- name: count_matching
-- How many events match. {filters}: as in list_events.
SELECT count(*) FROM events WHERE {filters}

-- name: filter_status
status = %(status)s

-- name: filter_type
type = %(type)s

-- name: filter_since
received_at >= %(since)s

-- name: filter_until
received_at < %(until)s

-- name: filter_before
-- The keyset of the list's next page: the events older than the previous page's last one, in the list's
-- order. As a row comparison it is one index condition on events_received (received_at, id), and on
-- events_type / events_account (their received_at, then the rest filtered).
(received_at, id) < (%(before_at)s, %(before_id)s)

-- name: filter_account
account = %(account)s

-- name: filter_object
-- The events about a Stripe object: their data.object is it, or names it by id.
(payload -> 'data' -> 'object' ->> 'id' = %(object)s
 OR payload -> 'data' -> 'object' ->> 'customer' = %(object)s
 OR payload -> 'data' -> 'object' ->> 'charge' = %(object)s
 OR payload -> 'data' -> 'object' ->> 'payment_intent' = %(object)s
 OR payload -> 'data' -> 'object' ->> 'invoice' = %(object)s
 OR payload -> 'data' -> 'object' ->> 'subscription' = %(object)s)

-- name: changes_of
-- The records an event changed, from the activity it wrote.
SELECT record_type, record_id, kind, message, customer_id FROM activity
WHERE stripe_event_id = %(id)s ORDER BY id

-- name: claim
SELECT id, account, type, api_version, created, status, attempts, last_error, waiting_on, received_at,
       processed_at, next_attempt_at, scheduled_attempts, source, payload
FROM events WHERE id = %(id)s FOR UPDATE SKIP LOCKED

-- name: event_keys
-- What tells an event's customer, from an `events` row: the customer its object names (or is), the
-- object's id, and the charge it names (a refund names only its charge).
id, account,
COALESCE(payload -> 'data' -> 'object' -> 'customer' ->> 'id', payload -> 'data' -> 'object' ->> 'customer',
         CASE WHEN payload -> 'data' -> 'object' ->> 'object' = 'customer' THEN payload -> 'data' -> 'object' ->> 'id' END)
    AS customer,
payload -> 'data' -> 'object' ->> 'id' AS object_id,
payload -> 'data' -> 'object' ->> 'charge' AS charge

-- name: claim_next
-- The window: received events in Stripe's order ({type_rank}: the rank of an event's type within one
-- second). Each one's customer group (its customer; for a refund, the customer of its charge's payment,
-- else of a charge event among the candidates, else the charge; else its object) is then locked (try:
-- never waiting) in that order until %(limit)s are taken, so a claim locks no customer beyond its last
-- event (a materialized CTE is read in the order it was written). The row locks then guard the events
-- against per-event jobs; the status is checked again on the latest row (a batch that committed since
-- the window was read). {lock_space}: the first key of the customers' advisory locks.
WITH window_ AS MATERIALIZED (
    SELECT {event_keys}, created, {type_rank} AS rank, received_at
    FROM events WHERE status = 'received' AND id <> %(exclude)s
    ORDER BY created, {type_rank}, received_at LIMIT %(scan)s
), candidates AS MATERIALIZED (
    SELECT w.id, w.account,
           COALESCE(w.customer,
                    (SELECT p.stripe_customer_id FROM payments p
                     WHERE p.account = w.account AND p.stripe_charge_id = w.charge LIMIT 1),
                    c.customer, w.charge, w.object_id, w.id) AS key
    FROM window_ w
    LEFT JOIN (SELECT DISTINCT ON (account, object_id) account, object_id, customer FROM window_
               WHERE customer IS NOT NULL ORDER BY account, object_id, created) c
      ON c.account = w.account AND c.object_id = w.charge
    ORDER BY w.created, w.rank, w.received_at
), taken AS MATERIALIZED (
    SELECT id FROM candidates w
    WHERE pg_try_advisory_xact_lock({lock_space}, hashtext(w.account || ' ' || w.key)) LIMIT %(limit)s
)
SELECT id, account, type, api_version, created, status, attempts, last_error, waiting_on, received_at,
       processed_at, next_attempt_at, scheduled_attempts, source, payload
FROM events WHERE id IN (SELECT id FROM taken) AND status = 'received'
ORDER BY created, {type_rank}, received_at FOR UPDATE SKIP LOCKED

-- name: lock_customer_of
-- Hold the event's customer group as claim_next does, waiting while another transaction holds it.
SELECT pg_advisory_xact_lock({lock_space}, hashtext(w.account || ' ' || COALESCE(
    w.customer,
    (SELECT p.stripe_customer_id FROM payments p WHERE p.account = w.account AND p.stripe_charge_id = w.charge LIMIT 1),
    w.charge, w.object_id, w.id)))
FROM (SELECT {event_keys} FROM events WHERE id = %(id)s) w

-- name: exists
SELECT 1 FROM events WHERE id = %(id)s

-- name: record_attempts
-- A batch's attempts, folded per event (domain/ledger.py, Attempts): how many, how many automatic, the
-- last error, and, when one of them set the status (an automatic attempt, a wake-up, or a replay that
-- applied the event), the last such status with its retry schedule and what it waits for. Replays that did
-- not apply the event leave status and schedule as they were, and `waiting_on` too unless they name one.
UPDATE events e SET
    status = CASE WHEN o.sets THEN o.status ELSE e.status END,
    last_error = o.error,
    waiting_on = CASE WHEN o.sets THEN o.waiting_on ELSE COALESCE(o.waiting_on, e.waiting_on) END,
    attempts = e.attempts + o.attempts,
    scheduled_attempts = e.scheduled_attempts + o.scheduled,
    processed_at = CASE WHEN o.applied THEN now() ELSE e.processed_at END,
    next_attempt_at = CASE WHEN NOT o.sets THEN e.next_attempt_at
                           WHEN o.retry IS NULL THEN NULL
                           ELSE now() + make_interval(secs => o.retry) END
FROM unnest(%(ids)s::text[], %(attempts)s::int[], %(scheduled)s::int[], %(error)s::text[], %(sets)s::bool[],
            %(status)s::text[], %(retry)s::int[], %(waiting_on)s::text[], %(applied)s::bool[])
    AS o(id, attempts, scheduled, error, sets, status, retry, waiting_on, applied)
WHERE e.id = o.id

-- name: log_attempts
-- One row per attempt, in the order they were made.
INSERT INTO event_attempts (event_id, kind, status, error)
SELECT id, kind, status, error
FROM unnest(%(ids)s::text[], %(kinds)s::text[], %(statuses)s::text[], %(errors)s::text[])
    WITH ORDINALITY AS a(id, kind, status, error, n)
ORDER BY n

-- name: attempts_log
SELECT at, kind, status, error FROM event_attempts WHERE event_id = %(id)s ORDER BY id

-- name: waiting_on
SELECT id FROM events
WHERE account = %(account)s AND waiting_on = ANY(%(ids)s) AND status IN ('waiting', 'failed')

-- name: stranded
-- Events a job should take now and no worker holds: received longer ago than %(age)s seconds, or
-- waiting/failed with their retry time come. A worker applying an event holds its row lock, and a
-- killed worker's lock goes with its connection: SKIP LOCKED tells them apart.
SELECT id, status, scheduled_attempts FROM events
WHERE (status = 'received' AND received_at < now() - make_interval(secs => %(age)s))
   OR (status IN ('waiting', 'failed') AND next_attempt_at <= now())
ORDER BY received_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED

-- name: known
SELECT id FROM events WHERE id = ANY(%(ids)s)

-- name: count_by_status
SELECT status, count(*) FROM events GROUP BY status

-- name: count_unsettled
-- The statuses a live ledger keeps few events in, each counted from its partial index (events_claim,
-- events_due).
SELECT 'received', count(*) FROM events WHERE status = 'received'
UNION ALL SELECT status, count(*) FROM events WHERE status IN ('waiting', 'failed') GROUP BY status

-- name: count_unsettled_of_account
-- The unsettled statuses of one account's events (a scoped admin token's header and Health). The OFFSET 0
-- fences keep each status read from its small partial index (events_claim, events_due), the account then
-- filtered among those few rows: without them PostgreSQL may walk events_account, every event of a big
-- account, on every console page.
SELECT 'received', count(*) FROM (SELECT account FROM events WHERE status = 'received' OFFSET 0) r
WHERE account = %(account)s
UNION ALL
SELECT status, count(*) FROM (SELECT status, account FROM events WHERE status IN ('waiting', 'failed') OFFSET 0) w
WHERE account = %(account)s GROUP BY status

-- name: events_statistics
-- PostgreSQL's own figures: the live rows it counts as they are inserted and deleted, and each
-- status's share of the rows the last ANALYZE sampled.
SELECT s.n_live_tup, st.most_common_vals::text::text[], st.most_common_freqs FROM pg_stat_user_tables s
LEFT JOIN pg_stats st ON st.schemaname = s.schemaname AND st.tablename = s.relname AND st.attname = 'status'
WHERE s.relid = 'events'::regclass

-- name: oldest_unapplied
-- One min() per status, each read from that status's small partial index (events_claim, events_due).
-- As one min() over both, or without the OFFSET 0 fences, PostgreSQL walked the received_at index from
-- the oldest event until it met one: the whole ledger (4 s at 10 million events), since unapplied
-- events are the newest.
SELECT COALESCE(EXTRACT(EPOCH FROM now() - LEAST(
    (SELECT min(received_at) FROM (SELECT received_at FROM events WHERE status = 'received' OFFSET 0) r),
    (SELECT min(received_at) FROM (SELECT received_at FROM events WHERE status = 'waiting' OFFSET 0) w))), 0)

-- name: oldest_unapplied_of_account
-- As oldest_unapplied, for one account's events (a scoped admin token's Health), with the same fences.
SELECT COALESCE(EXTRACT(EPOCH FROM now() - LEAST(
    (SELECT min(received_at) FROM (SELECT received_at, account FROM events WHERE status = 'received' OFFSET 0) r
     WHERE account = %(account)s),
    (SELECT min(received_at) FROM (SELECT received_at, account FROM events WHERE status = 'waiting' OFFSET 0) w
     WHERE account = %(account)s))), 0)

-- name: replays_done
SELECT event_id, count(*) FROM event_attempts
WHERE event_id = ANY(%(ids)s) AND kind = 'replay' GROUP BY event_id

-- name: per_minute
-- Events received and applied (processed or ignored) in each of the last %(minutes)s minutes, this one
-- included, oldest first; minutes without any count 0. Each count reads its index's range only
-- (events_received; events_applied, migration 0013), not the ledger.
WITH minutes AS (
    SELECT generate_series(date_trunc('minute', now()) - make_interval(mins => %(minutes)s - 1),
                           date_trunc('minute', now()), interval '1 minute') AS minute
), received AS (
    SELECT date_trunc('minute', received_at) AS minute, count(*) AS n FROM events
    WHERE received_at >= date_trunc('minute', now()) - make_interval(mins => %(minutes)s - 1) GROUP BY 1
), applied AS (
    SELECT date_trunc('minute', processed_at) AS minute, count(*) AS n FROM events
    WHERE processed_at >= date_trunc('minute', now()) - make_interval(mins => %(minutes)s - 1) GROUP BY 1
)
SELECT m.minute, COALESCE(r.n, 0) AS received, COALESCE(a.n, 0) AS applied
FROM minutes m LEFT JOIN received r USING (minute) LEFT JOIN applied a USING (minute)
ORDER BY m.minute

-- name: per_minute_of_account
-- As per_minute, for one account's events (a scoped admin token's Health): received from events_account
-- (account, received_at); applied from events_applied's range, the account filtered.
WITH minutes AS (
    SELECT generate_series(date_trunc('minute', now()) - make_interval(mins => %(minutes)s - 1),
                           date_trunc('minute', now()), interval '1 minute') AS minute
), received AS (
    SELECT date_trunc('minute', received_at) AS minute, count(*) AS n FROM events
    WHERE account = %(account)s
      AND received_at >= date_trunc('minute', now()) - make_interval(mins => %(minutes)s - 1) GROUP BY 1
), applied AS (
    SELECT date_trunc('minute', processed_at) AS minute, count(*) AS n FROM events
    WHERE processed_at >= date_trunc('minute', now()) - make_interval(mins => %(minutes)s - 1)
      AND account = %(account)s GROUP BY 1
)
SELECT m.minute, COALESCE(r.n, 0) AS received, COALESCE(a.n, 0) AS applied
FROM minutes m LEFT JOIN received r USING (minute) LEFT JOIN applied a USING (minute)
ORDER BY m.minute

-- name: known_accounts
SELECT id FROM accounts ORDER BY id

-- name: type_rank
-- An event's rank within one second ({ranks}: a type_rank_when per ranked type; {other}: the rest's).
CASE type {ranks} ELSE {other} END

-- name: type_rank_when
WHEN {type} THEN {rank}
