"""Applying one stored event: claim it, run its handler atomically, record the outcome.

The event row is locked (FOR UPDATE SKIP LOCKED) for the whole transaction, so two copies of a job
never apply one event twice; each handler runs in a savepoint (OPEN_EVENT), so a failing
handler leaves the ledger update intact. A race with another event on the same new record (unique violation,
deadlock) re-runs the handler.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg
import structlog

from domain import activity, ledger, stripe_ids
from domain.ledger import AttemptKind, EventStatus
from workers import telemetry
from workers.context import EventContext, Waiting
from workers.event_table import EVENT_HANDLERS
from workers.queueing import RETRY_INTERVALS, enqueue_wake
from workers.services import Services

log = structlog.get_logger(__name__)

CONFLICTS = (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected,
             psycopg.errors.SerializationFailure, psycopg.errors.LockNotAvailable)
MAX_CONFLICT_RETRIES = 5


class EventNotApplied(Exception):
    """Raised to RQ when an event gave up for good, so its job lands in RQ's failed registry."""


BATCH_SIZE = 50  # events applied per transaction: a commit (an fsync) per event would cap throughput


def apply_event(services: Services, event_id: str, *, kind: AttemptKind = AttemptKind.AUTOMATIC,
                due: bool = False) -> str:
    """Apply the stored event `event_id`, and with it up to BATCH_SIZE - 1 other events that no
    worker has applied yet, in one transaction (one savepoint each); returns event_id's status.

    The other events' own jobs later find them applied and return at once. A replay applies the
    event whatever its status, outside the retry schedule; `due` (a scheduled retry, or a wake-up
    because what it waited for arrived) applies a waiting or failed one before its retry time.
    """
    with services.pool.connection() as conn, conn.transaction():
        event = ledger.claim(conn, event_id)
        if event is None:
            return "missing" if not ledger.exists(conn, event_id) else "busy"
        if not (kind is AttemptKind.REPLAY or _should_apply(event, due)):
            return event.status
        ledger.lock_customer_of(conn, event_id)  # as a drain's claim does: one worker per customer
        batch = [event] + ledger.claim_next(conn, limit=BATCH_SIZE - 1, exclude=event_id)
        kinds = {item.id: AttemptKind.AUTOMATIC for item in batch} | {event_id: kind}  # the others: automatic
        outcomes, to_wake = apply_claimed(conn, services, batch, kinds)
    telemetry.events_attempted(batch, outcomes)  # committed: counted once
    wake(services, to_wake)
    outcome = outcomes[event_id]
    if outcome.gave_up:
        raise EventNotApplied(f"{event_id} failed for good: {outcome.error}") from outcome.error
    return outcome.status.value


def apply_claimed(conn, services: Services, batch: list, kinds: dict) -> tuple[dict, list[str]]:
    """Apply claimed events in Stripe's order, one savepoint each, in the caller's transaction; returns
    their outcomes and the events to wake once it commits: those that waited for what these recorded,
    and these that should be tried again at once."""
    batch = sorted(batch, key=ledger.stripe_order)  # fewer waits
    # Pipeline mode: a statement whose result nobody reads (most writes) is sent without waiting for
    # its answer; the next read brings the answers back. A first pass trusts the events' writes, so an
    # event costs a round trip per read. Should a statement fail, the pipeline cannot say which event
    # sent it: the batch is undone and applied again, carefully, waiting at the end of each event for
    # its writes (one round trip more per event), so only the event at fault is undone.
    # The attempts and the activity go in at the end, two set-based statements for the whole batch.
    with conn.pipeline() as pipeline:
        conn.execute(OPEN_BATCH)
        try:
            done = _apply_all(conn, services, batch, kinds, Done(ledger.Attempts(), [], pipeline, careful=False))
            pipeline.sync()
        except psycopg.Error as exc:
            log.info("a statement of the batch failed; applying it again, one event at a time",
                     error=f"{type(exc).__name__}: {exc}")
            _sync_after_error(pipeline)
            conn.execute(UNDO_BATCH)
            done = _apply_all(conn, services, batch, kinds, Done(ledger.Attempts(), [], pipeline, careful=True))
        for event_id, level, message, fields in done.lines:
            with structlog.contextvars.bound_contextvars(event_id=event_id):
                getattr(log, level)(message, **fields)
        done.attempts.write(conn)  # the statuses, before reading which events wait
        activity.write(conn, done.entries)
    outcomes = done.outcomes
    waiters = [w for account, ids in touched_by(batch, outcomes).items()
               for w in ledger.waiting_on(conn, account, sorted(ids))
               if w not in outcomes or outcomes[w].status is not EventStatus.PROCESSED]
    return outcomes, waiters + [i for i, o in outcomes.items() if o.retry_in == 0 and i not in waiters]


def touched_by(batch: list, outcomes: dict) -> dict[str, set]:
    """The Stripe objects the batch's events recorded, per account."""
    touched: dict[str, set] = {}
    for item in batch:
        touched.setdefault(item.account, set()).update(outcomes[item.id].touched)
    return touched


def _apply_all(conn, services: Services, batch: list, kinds: dict, done: Done) -> Done:
    conn.execute(OPEN_EVENT)
    for item in batch:
        done.outcomes[item.id] = _apply_one(conn, services, item, kinds[item.id], done)
    conn.execute(RELEASE_EVENT)
    return done


def _sync_after_error(pipeline: psycopg.Pipeline) -> None:
    """After an error the server skips what the pipeline sent until its next sync: sync (what it
    reports is the error being handled, or the statements it skipped)."""
    with contextlib.suppress(psycopg.Error):
        pipeline.sync()


def _should_apply(event, due: bool) -> bool:
    if event.status == EventStatus.RECEIVED:
        return True
    if event.status in (EventStatus.WAITING, EventStatus.FAILED):
        return due or (event.next_attempt_at is not None and event.next_attempt_at <= datetime.now(UTC))
    return False  # processed or ignored: a redelivered job changes nothing (replay to force)


# Each event's handler runs in a savepoint: undone alone when it fails.
OPEN_BATCH = "SAVEPOINT teachery_batch"  # what a careful pass starts again from
UNDO_BATCH = "ROLLBACK TO SAVEPOINT teachery_batch"  # claims and their locks stay: they were taken before
OPEN_EVENT = "SAVEPOINT teachery_event"
RELEASE_EVENT = "RELEASE SAVEPOINT teachery_event"
UNDO_EVENT = "ROLLBACK TO SAVEPOINT teachery_event"  # and the savepoint stays, for the next event


@dataclass
class Done:
    """What a batch's attempts recorded, written once for the batch (same transaction)."""
    attempts: ledger.Attempts
    entries: list  # activity entries of the events applied
    pipeline: psycopg.Pipeline  # the connection's: its sync() waits for every statement sent so far
    careful: bool  # wait for each event's writes before the next event (else a failed statement undoes the pass)
    outcomes: dict = field(default_factory=dict)
    lines: list = field(default_factory=list)  # (event id, level, message, fields): logged once the pass held

    def say(self, event_id: str, level: str, message: str, **fields) -> None:
        self.lines.append((event_id, level, message, fields))


@dataclass
class Outcome:
    status: EventStatus
    error: Exception | None = None
    touched: set = field(default_factory=set)
    retry_in: int | None = None  # seconds until the next automatic attempt; None: none
    gave_up: bool = False  # this automatic attempt was the schedule's last: the job fails into RQ's registry


def _apply_one(conn, services: Services, event, kind: AttemptKind, done: Done) -> Outcome:
    with structlog.contextvars.bound_contextvars(event_id=event.id):  # on every line logged meanwhile
        handler = EVENT_HANDLERS.get(event.type)
        if handler is None:
            done.attempts.add(event.id, kind, EventStatus.IGNORED)
            done.say(event.id, "info", "event ignored", type=event.type)
            return Outcome(EventStatus.IGNORED)
        outcome = _run(conn, services, handler, event, kind, done)
        if outcome.status is EventStatus.PROCESSED:
            done.say(event.id, "info", "event applied", type=event.type)
        else:
            done.say(event.id, "warning", "event not applied", type=event.type, status=outcome.status.value,
                     error=str(outcome.error), retry_in=outcome.retry_in)
        return outcome


def _run(conn, services: Services, handler, event, kind: AttemptKind, done: Done) -> Outcome:
    for conflict_retry in range(MAX_CONFLICT_RETRIES):
        ctx = EventContext.of(conn, event.payload, services.stripe)
        try:
            handler(ctx)
            conn.execute(RELEASE_EVENT)
            conn.execute(OPEN_EVENT)
            if done.careful:
                done.pipeline.sync()  # the handler's unanswered writes: their errors are raised here
        except Exception as exc:
            if isinstance(exc, psycopg.Error) and not done.careful:
                raise  # an error of this event's statements, or of an earlier event's: the careful pass tells
            _undo(conn, done)
            if isinstance(exc, CONFLICTS):
                log.info("handler met another worker's change; running it again", conflict=type(exc).__name__,
                         retry=conflict_retry + 1)
                if conflict_retry < MAX_CONFLICT_RETRIES - 1:
                    continue
                error, waiting_on, held_now = exc, None, False
            elif isinstance(exc, Waiting):
                error, waiting_on = exc, exc.object_id
                # another worker committed it while we looked: try again at once
                held_now = exc.unseen and stripe_ids.held(conn, event.account, exc.object_id)
            else:  # a bug or a passing fault: recorded, retried with backoff, replayable
                log.exception("handler failed", event_id=event.id, type=event.type)
                error, waiting_on, held_now = exc, None, False
        else:
            done.attempts.add(event.id, kind, EventStatus.PROCESSED)
            done.entries += ctx.entries
            return Outcome(EventStatus.PROCESSED, touched=ctx.touched)
        return _not_applied(done.attempts, event, kind, error, waiting_on, held_now)
    raise AssertionError("unreachable")


def _undo(conn, done: Done) -> None:
    """Undo the event's changes (first the sync that an error in the pipeline needs). In a trusting
    pass, an error that the sync reports is some event's statement: the careful pass tells which."""
    if done.careful:
        _sync_after_error(done.pipeline)
    else:
        done.pipeline.sync()
    conn.execute(UNDO_EVENT)


def _not_applied(attempts: ledger.Attempts, event, kind: AttemptKind, error: Exception, waiting_on: str | None,
                 held_now: bool) -> Outcome:
    """Record an attempt that did not apply the event. A replay leaves the event's status and schedule
    as they were (only its error is news); an automatic attempt moves the schedule, or gives up."""
    message = str(error) if isinstance(error, Waiting) else f"{type(error).__name__}: {error}"
    if kind is AttemptKind.REPLAY:
        status = EventStatus.WAITING if waiting_on else EventStatus.FAILED
        attempts.add(event.id, kind, status, error=message, waiting_on=waiting_on)
        return Outcome(status, error=error, retry_in=0 if held_now else None)
    scheduled = event.scheduled_attempts + 1
    retry_in = RETRY_INTERVALS[scheduled - 1] if scheduled <= len(RETRY_INTERVALS) else None
    if held_now and retry_in is not None:
        retry_in = 0
    status = EventStatus.WAITING if waiting_on and retry_in is not None else EventStatus.FAILED
    had_schedule = event.status != EventStatus.FAILED or event.next_attempt_at is not None
    if retry_in is None:
        message = f"gave up after {scheduled} automatic attempts: {message}"
    attempts.add(event.id, kind, status, error=message, waiting_on=waiting_on, retry_in_seconds=retry_in)
    return Outcome(status, error=error, retry_in=retry_in, gave_up=retry_in is None and had_schedule)


def wake(services: Services, waiting: list[str]) -> None:
    """Events waiting for an object this event just recorded get another go now."""
    for waiting_id in waiting:
        try:
            enqueue_wake(services.queue, waiting_id)
        except Exception as exc:  # the sweep will get to it when its retry time comes
            log.warning("could not wake waiting event", event_id=waiting_id, error=str(exc))
