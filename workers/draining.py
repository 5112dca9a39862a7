"""The drain job: apply every event no worker has applied yet, in batches, in Stripe's order.

One RQ job drains the ledger (rather than one job per event): it claims a batch of received events
(`FOR UPDATE SKIP LOCKED`, customer by customer: several workers share the ledger without waiting on each
other, and never hold one customer's events at once; domain/ledger.py CLAIM_NEXT), applies
each in its own savepoint, records the outcomes and commits once per batch, then claims the next, until
none is left. The ledger stays the authority: a killed worker's batch rolls back and its row locks go
with its connection, so the events are `received` again for the next drain (the sweep asks for one).
Waits, wake-ups, scheduled retries and replays keep their own jobs (workers/processing.py).
"""
from __future__ import annotations

import threading
import time

import structlog

from domain import ledger, stripe_ids
from domain.ledger import AttemptKind, EventStatus
from workers import telemetry
from workers.context import Waiting
from workers.processing import apply_claimed, touched_by, wake
from workers.queueing import DRAIN_LINGER, request_drain
from workers.services import Services

log = structlog.get_logger(__name__)

DRAIN_BATCH = 200  # events per transaction: one commit (one fsync) for all of them
DRAIN_SECONDS = 60  # a drain job hands over to a fresh one after this long (well inside RQ's job timeout)

stop_requested = threading.Event()  # set by the worker on SIGTERM: the job ends after its batch


def _wake_across_workers(services: Services, batch, outcomes) -> None:
    """After the commit, the wake-ups that another worker's batch, in flight at the same time, made
    necessary: its events that waited for an object this batch recorded, and this batch's events that
    waited for an object it recorded. Whichever of the two commits last sees the other's rows here, so
    no such wait has to sit out its retry time. (Extra wake-ups are harmless: they merge, and an
    applied event ignores them.)"""
    touched = touched_by(batch, outcomes)
    waited = [(e, outcomes[e.id].error.object_id) for e in batch
              if outcomes[e.id].status is EventStatus.WAITING and isinstance(outcomes[e.id].error, Waiting)]
    with services.pool.connection() as conn:
        late = [w for account, ids in touched.items() if ids for w in ledger.waiting_on(conn, account, sorted(ids))
                if w not in outcomes]
        late += [e.id for e, object_id in waited if stripe_ids.held(conn, e.account, object_id)]
    wake(services, late)


def drain(services: Services, *, batch_size: int = DRAIN_BATCH, max_seconds: float = DRAIN_SECONDS) -> int:
    """Apply received events until none is left (or the worker is stopping, or max_seconds passed:
    then another drain is asked for); returns how many events this job applied or recorded."""
    done = 0
    started = time.monotonic()
    deadline = started + max_seconds
    lingered = False
    while True:
        looked = time.monotonic()  # before the claim: the claim sees what was committed by then
        with services.pool.connection() as conn, conn.transaction():
            batch = ledger.claim_next(conn, limit=batch_size)
            if batch:
                outcomes, to_wake = apply_claimed(conn, services, batch,
                                                  {e.id: AttemptKind.AUTOMATIC for e in batch})
        if not batch:
            if lingered or looked - started >= DRAIN_LINGER:
                return done
            # Once more, a moment later: the web counts on a drain looking DRAIN_LINGER after it started.
            time.sleep(DRAIN_LINGER)
            lingered = True
            continue
        lingered = False
        telemetry.events_attempted(batch, outcomes)  # committed: counted once (a killed worker's batch: never)
        done += len(batch)
        _wake_across_workers(services, batch, outcomes)
        ending = stop_requested.is_set() or time.monotonic() > deadline
        if len(batch) == batch_size or ending:
            # More may be left: a worker that is free joins in (a no-op when a drain is pending); and one
            # that ends early owes the web the look it would have taken before ending.
            request_drain(services.queue)
        wake(services, to_wake)
        applied = sum(o.status in (EventStatus.PROCESSED, EventStatus.IGNORED) for o in outcomes.values())
        log.info("batch drained", events=len(batch), applied=applied)
        if ending:
            return done  # the rest: the drain asked for above, by whoever is free (another worker, or this one)
