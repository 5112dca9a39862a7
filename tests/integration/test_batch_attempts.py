"""A batch writes its attempts with one statement (folded per event) and its log with another: the rows
must be what writing each attempt on its own gives, whatever the attempts, however many per event.
The reference: the statements that wrote one attempt each (before the batch's writes were set-based)."""
from __future__ import annotations

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain import ledger
from domain.ledger import AttemptKind, EventStatus
from tests.stripe_events import T0, customer, event

attempts = st.lists(st.tuples(
    st.sampled_from(list(AttemptKind)), st.sampled_from([s for s in EventStatus if s is not EventStatus.RECEIVED]),
    st.one_of(st.none(), st.sampled_from(["boom", "waiting for ch_1"])),
    st.one_of(st.none(), st.sampled_from(["ch_1", "in_2"])),
    st.one_of(st.none(), st.sampled_from([0, 30, 600]))), min_size=1, max_size=5)

COLUMNS = ("status, last_error, waiting_on, attempts, scheduled_attempts, processed_at IS NOT NULL, "
           "next_attempt_at IS NULL, round(extract(epoch FROM next_attempt_at - now()))")


# One attempt that sets the status (automatic, a wake-up, or a replay that applied the event) ...
SETS_STATUS = """
UPDATE events SET status = %(status)s, last_error = %(error)s, waiting_on = %(waiting_on)s,
    attempts = attempts + 1, scheduled_attempts = scheduled_attempts + %(scheduled)s,
    processed_at = CASE WHEN %(status)s IN ('processed', 'ignored') THEN now() ELSE processed_at END,
    next_attempt_at = CASE WHEN %(retry)s::int IS NULL THEN NULL
                      ELSE now() + make_interval(secs => %(retry)s::int) END
WHERE id = %(id)s"""
# ... or a replay that did not apply it: status and schedule stay
FAILED_REPLAY = """
UPDATE events SET last_error = %(error)s, waiting_on = COALESCE(%(waiting_on)s, waiting_on),
    attempts = attempts + 1
WHERE id = %(id)s"""
LOG = "INSERT INTO event_attempts (event_id, kind, status, error) VALUES (%(id)s, %(kind)s, %(status)s, %(error)s)"


def _one_at_a_time(conn, event_id, kind, status, error, waiting_on, retry) -> None:
    applied = status in (EventStatus.PROCESSED, EventStatus.IGNORED)
    params = {"id": event_id, "kind": kind.value, "status": status.value, "error": error, "waiting_on": waiting_on,
              "retry": None if applied else retry, "scheduled": 0 if kind is AttemptKind.REPLAY else 1}
    conn.execute(FAILED_REPLAY if kind is AttemptKind.REPLAY and not applied else SETS_STATUS, params)
    conn.execute(LOG, params)


def _row(conn, event_id: str) -> tuple:
    return conn.execute(f"SELECT {COLUMNS} FROM events WHERE id = %s", (event_id,)).fetchone()


def _log(conn, event_id: str) -> list[tuple]:
    return [(r["kind"], r["status"], r["error"]) for r in ledger.attempts_log(conn, event_id)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(attempts, st.sampled_from(list(EventStatus)))
def test_a_batch_writes_what_one_attempt_at_a_time_writes(database_url, made, start):
    with psycopg.connect(database_url) as conn, conn.transaction(force_rollback=True):
        one, batch = (event("customer.created", customer(f"cus_BA_{n}", email="a@e.x", name="A"), created=T0) for n in (1, 2))
        for e in (one, batch):
            ledger.record_event(conn, e)
        conn.execute("UPDATE events SET status = %s, waiting_on = 'ch_0', attempts = 2, scheduled_attempts = 1, "
                     "next_attempt_at = now() + interval '1 hour' WHERE id = ANY(%s)", (start.value, [one["id"], batch["id"]]))
        together = ledger.Attempts()
        for kind, status, error, waiting_on, retry in made:
            _one_at_a_time(conn, one["id"], kind, status, error, waiting_on, retry)
            together.add(batch["id"], kind, status, error=error, waiting_on=waiting_on, retry_in_seconds=retry)
        together.write(conn)
        assert _row(conn, batch["id"]) == _row(conn, one["id"])
        assert _log(conn, batch["id"]) == _log(conn, one["id"]) == [(k.value, s.value, e) for k, s, e, _, _ in made]


def test_two_events_of_one_batch_each_get_their_own(services):
    with services.pool.connection() as conn, conn.transaction(force_rollback=True):
        first, second = (event("customer.created", customer(f"cus_BB_{n}", email="b@e.x", name="B"), created=T0) for n in (1, 2))
        for e in (first, second):
            ledger.record_event(conn, e)
        batch = ledger.Attempts()
        batch.add(first["id"], AttemptKind.AUTOMATIC, EventStatus.WAITING, error="waiting for ch_9",
                  waiting_on="ch_9", retry_in_seconds=30)
        batch.add(second["id"], AttemptKind.AUTOMATIC, EventStatus.PROCESSED)
        batch.add(first["id"], AttemptKind.WAKE, EventStatus.PROCESSED)
        batch.write(conn)
        assert _row(conn, first["id"])[:7] == ("processed", None, None, 2, 2, True, True)
        assert _row(conn, second["id"])[:7] == ("processed", None, None, 1, 1, True, True)
        assert _log(conn, first["id"]) == [("automatic", "waiting", "waiting for ch_9"), ("wake", "processed", None)]
