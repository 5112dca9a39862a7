-- Only the indexes on `events` that its reads use: every index costs each webhook's INSERT (and each
-- status change) a write; events_object_id also parsed every payload's JSON.
--   events_pkey          one event; the receiver's ON CONFLICT (id)
--   events_received_at   the newest page of the list (any filter: matches are most of the recent rows),
--                        `--since`; min(received_at) of the few unsettled ones
--   events_claim         the drain's claim: received events, oldest `created` first (small: drained)
--   events_due           the sweep: waits and failures whose retry time has come (small)
--   events_waiting_on    waking the events that waited for an object (unchanged, partial)
-- Dropped: events_status and events_type (filters on the newest page walk events_received_at), and
-- events_object_id (the `--object` filter ORs six fields of the payload, so it never used it).
DROP INDEX IF EXISTS events_status;
DROP INDEX IF EXISTS events_type;
DROP INDEX IF EXISTS events_object_id;
CREATE INDEX events_claim ON events (created) WHERE status = 'received';
CREATE INDEX events_due ON events (next_attempt_at) WHERE status IN ('waiting', 'failed');
