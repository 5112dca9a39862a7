-- The attempts log: one row per attempt at an event (automatic, a wake-up, or an operator's replay),
-- written in the same transaction as the outcome it records.
-- events.attempts counts every attempt (the rows of this log); events.scheduled_attempts counts only
-- the automatic ones (first try, scheduled retries, wake-ups): the retry schedule's position, which a
-- replay never moves.

ALTER TABLE events ADD COLUMN scheduled_attempts integer NOT NULL DEFAULT 0;
UPDATE events SET scheduled_attempts = attempts;

CREATE TABLE event_attempts (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id text NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    at       timestamptz NOT NULL DEFAULT now(),
    kind     text NOT NULL CHECK (kind IN ('automatic', 'wake', 'replay')),
    status   text NOT NULL,
    error    text
);
CREATE INDEX event_attempts_event ON event_attempts (event_id, id);

-- `events list --object ID`: the Stripe object an event is about.
CREATE INDEX events_object_id ON events ((payload -> 'data' -> 'object' ->> 'id'));
