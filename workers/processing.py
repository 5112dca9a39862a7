"""Applying one stored event: claim it, run its handler atomically, record the outcome.

The event row is locked (FOR UPDATE SKIP LOCKED) for the whole transaction, so two copies of a job
never apply one event twice; the handler runs in a savepoint, so a failing handler leaves the
ledger update intact. A race with another event on the same new record (unique violation,
deadlock) re-runs the handler.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import psycopg
import structlog

from domain import ledger, stripe_ids
from domain.ledger import EventStatus
from workers.context import EventContext, Waiting, origin_of
from workers.event_table import EVENT_HANDLERS
from workers.queueing import RETRY_INTERVALS, enqueue_event

log = structlog.get_logger(__name__)

CONFLICTS = (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected,
             psycopg.errors.SerializationFailure, psycopg.errors.LockNotAvailable)
MAX_CONFLICT_RETRIES = 5


class EventNotApplied(Exception):
    """Raised to RQ when an event gave up for good, so its job lands in RQ's failed registry."""


BATCH_SIZE = 50  # events applied per transaction: a commit (an fsync) per event would cap throughput


def apply_event(services, event_id: str, *, replay: bool = False, due: bool = False) -> str:
    """Apply the stored event `event_id`, and with it up to BATCH_SIZE - 1 other events that no
    worker has applied yet, in one transaction (one savepoint each); returns event_id's status.

    The other events' own jobs later find them applied and return at once. `replay` applies the
    event whatever its status; `due` (a scheduled retry, or a wake-up because what it waited for
    arrived) applies a waiting or failed one before its retry time.
    """
    with services.pool.connection() as conn:
        with conn.transaction():
            event = ledger.claim(conn, event_id)
            if event is None:
                return "missing" if not ledger.exists(conn, event_id) else "busy"
            if not (replay or _should_apply(event, due)):
                return event.status
            batch = [event] + ledger.claim_received(conn, exclude=event_id, limit=BATCH_SIZE - 1)
            batch.sort(key=lambda e: (e.created, e.received_at))  # Stripe's order: fewer waits
            outcomes, touched = {}, {}
            for item in batch:
                outcomes[item.id] = _apply_one(conn, services, item)
                touched.setdefault(item.account, set()).update(outcomes[item.id].touched)
            waiters = [w for account, ids in touched.items() for w in ledger.waiting_on(conn, account, sorted(ids))
                       if w not in outcomes or outcomes[w].status is not EventStatus.PROCESSED]
    _wake(services, waiters + [i for i, o in outcomes.items() if o.retry_in == 0 and i not in waiters])
    outcome = outcomes[event_id]
    if outcome.status is EventStatus.FAILED and outcome.retry_in is None:
        raise EventNotApplied(f"{event_id} failed for good: {outcome.error}") from outcome.error
    return outcome.status.value


def _should_apply(event, due: bool) -> bool:
    if event.status == EventStatus.RECEIVED:
        return True
    if event.status in (EventStatus.WAITING, EventStatus.FAILED):
        return due or (event.next_attempt_at is not None and event.next_attempt_at <= datetime.now(timezone.utc))
    return False  # processed or ignored: a redelivered job changes nothing (replay to force)


@dataclass
class Outcome:
    status: EventStatus
    error: Exception | None = None
    touched: set = field(default_factory=set)
    retry_in: int | None = None  # seconds until the next attempt; None: no retry
    attempts: int = 0


def _apply_one(conn, services, event) -> Outcome:
    with structlog.contextvars.bound_contextvars(event_id=event.id):  # on every line logged meanwhile
        handler = EVENT_HANDLERS.get(event.type)
        if handler is None:
            ledger.mark(conn, event.id, EventStatus.IGNORED, error=None)
            log.info("event ignored", type=event.type)
            return Outcome(EventStatus.IGNORED)
        outcome = _run(conn, services, handler, event)
        if outcome.status is EventStatus.PROCESSED:
            log.info("event applied", type=event.type)
        else:
            log.warning("event not applied", type=event.type, status=outcome.status.value,
                        error=str(outcome.error), retry_in=outcome.retry_in)
        return outcome


def _run(conn, services, handler, event) -> Outcome:
    attempts = event.attempts + 1
    retry_in = RETRY_INTERVALS[attempts - 1] if attempts <= len(RETRY_INTERVALS) else None
    for conflict_retry in range(MAX_CONFLICT_RETRIES):
        ctx = EventContext(conn, event.payload, services.stripe, origin=origin_of(event.payload))
        try:
            with conn.transaction():
                handler(ctx)
                ctx.flush()
        except CONFLICTS as exc:
            if conflict_retry < MAX_CONFLICT_RETRIES - 1:
                continue
            error, waiting_on = exc, None
        except Waiting as exc:
            error, waiting_on = exc, exc.object_id
            if exc.unseen and retry_in is not None and stripe_ids.held(conn, event.account, exc.object_id):
                retry_in = 0  # another worker committed it while we looked: try again at once
        except Exception as exc:  # a bug or a passing fault: recorded, retried with backoff, replayable
            log.exception("handler failed", event_id=event.id, type=event.type)
            error, waiting_on = exc, None
        else:
            ledger.mark(conn, event.id, EventStatus.PROCESSED, error=None)
            return Outcome(EventStatus.PROCESSED, touched=ctx.touched, attempts=attempts)
        status = EventStatus.WAITING if waiting_on and retry_in is not None else EventStatus.FAILED
        message = str(error) if isinstance(error, Waiting) else f"{type(error).__name__}: {error}"
        if retry_in is None:
            message = f"gave up after {attempts} attempts: {message}"
        ledger.mark(conn, event.id, status, error=message, waiting_on=waiting_on, retry_in_seconds=retry_in)
        return Outcome(status, error=error, retry_in=retry_in, attempts=attempts)
    raise AssertionError("unreachable")


def _wake(services, waiting: list[str]) -> None:
    """Events waiting for an object this event just recorded get another go now."""
    for waiting_id in waiting:
        try:
            enqueue_event(services.queue, waiting_id, fresh=True, due=True)
        except Exception as exc:  # the sweep or RQ's retry will get to it
            log.warning("could not wake waiting event", event_id=waiting_id, error=str(exc))
