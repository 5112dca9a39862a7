"""Applying one stored event: claim it, run its handler atomically, record the outcome.

The event row is locked (FOR UPDATE SKIP LOCKED) for the whole transaction, so two copies of a job
never apply one event twice; the handler runs in a savepoint, so a failing handler leaves the
ledger update intact. A race with another event on the same new record (unique violation,
deadlock) re-runs the handler.
"""
from __future__ import annotations

import psycopg
import structlog

from domain import ledger
from domain.ledger import EventStatus
from workers.context import EventContext, Waiting, origin_of
from workers.event_table import EVENT_HANDLERS
from workers.queueing import RETRY_INTERVALS, enqueue_event

log = structlog.get_logger(__name__)

CONFLICTS = (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected,
             psycopg.errors.SerializationFailure, psycopg.errors.LockNotAvailable)
MAX_CONFLICT_RETRIES = 5


class EventNotApplied(Exception):
    """Raised to RQ so that its Retry schedules the next attempt."""


def apply_event(services, event_id: str, *, replay: bool = False, final_attempt: bool = False) -> str:
    """Apply the stored event `event_id`; returns the resulting ledger status."""
    outcome, error, touched, account = None, None, set(), ""
    with services.pool.connection() as conn:
        with conn.transaction():
            event = ledger.claim(conn, event_id)
            if event is None:
                return "missing" if not ledger.exists(conn, event_id) else "busy"
            if event.status in (EventStatus.PROCESSED, EventStatus.IGNORED) and not replay:
                return event.status
            account = event.account
            handler = EVENT_HANDLERS.get(event.type)
            if handler is None:
                ledger.mark(conn, event_id, EventStatus.IGNORED, error=None)
                return EventStatus.IGNORED.value
            outcome, error, touched = _run(conn, services, handler, event, final_attempt)
    if outcome is EventStatus.PROCESSED:
        _wake_waiters(services, account, touched)
        log.info("event applied", event_id=event_id, type=event.type)
        return outcome.value
    log.warning("event not applied", event_id=event_id, status=outcome.value, error=str(error))
    raise EventNotApplied(f"{event_id} {outcome.value}: {error}") from error


def _run(conn, services, handler, event, final_attempt):
    attempts_left = event.attempts
    for conflict_retry in range(MAX_CONFLICT_RETRIES):
        ctx = EventContext(conn, event.payload, services.stripe, origin=origin_of(event.payload))
        try:
            with conn.transaction():
                handler(ctx)
                ctx.flush()
        except CONFLICTS as exc:
            if conflict_retry == MAX_CONFLICT_RETRIES - 1:
                return _failed(conn, event, exc, final_attempt)
            continue
        except Waiting as exc:
            status = EventStatus.FAILED if final_attempt else EventStatus.WAITING
            ledger.mark(conn, event.id, status, error=str(exc), waiting_on=exc.object_id,
                        retry_in_seconds=_backoff(attempts_left))
            return status, exc, set()
        except Exception as exc:
            return _failed(conn, event, exc, final_attempt)
        ledger.mark(conn, event.id, EventStatus.PROCESSED, error=None)
        return EventStatus.PROCESSED, None, ctx.touched
    raise AssertionError("unreachable")


def _failed(conn, event, exc, final_attempt):
    log.exception("handler failed", event_id=event.id, type=event.type)
    ledger.mark(conn, event.id, EventStatus.FAILED, error=f"{type(exc).__name__}: {exc}",
                retry_in_seconds=None if final_attempt else _backoff(event.attempts))
    return EventStatus.FAILED, exc, set()


def _backoff(attempts: int) -> int:
    return RETRY_INTERVALS[min(attempts, len(RETRY_INTERVALS) - 1)]


def _wake_waiters(services, account: str, touched: set) -> None:
    """Events waiting for an object this event just recorded get another go now."""
    if not touched:
        return
    with services.pool.connection() as conn:
        waiting = ledger.waiting_on(conn, account, sorted(touched))
    for waiting_id in waiting:
        try:
            enqueue_event(services.queue, waiting_id, fresh=True)
        except Exception as exc:  # the sweep or RQ's retry will get to it
            log.warning("could not wake waiting event", event_id=waiting_id, error=str(exc))
