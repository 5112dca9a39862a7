"""Putting work on RQ: events on one queue, reconciliation runs on another; jobs named after what they do."""
from __future__ import annotations

import time

from rq import Queue
from rq.exceptions import DuplicateJobError, InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus

QUEUE_NAME = "teachery-events"
RECONCILIATION_QUEUE_NAME = "teachery-reconciliations"
QUEUES = (QUEUE_NAME, RECONCILIATION_QUEUE_NAME)  # in the order a worker serves them: events first

# Backoff (seconds) between automatic attempts at an event that waits on something not yet known, or
# hit a passing fault. The ledger keeps the attempts and the next attempt's time (so they survive
# Redis); the worker's sweep enqueues an attempt when its time comes; after the last one the event is
# `failed` and its job lands in RQ's failed registry. A wait is not a job failure.
# Why not RQ's Retry/enqueue_in: they need RQ's scheduler, which RQ runs in a *forked* process
# that inherits the worker's PostgreSQL sockets, so a killed worker's transaction (and its lock
# on the event) would outlive it.
RETRY_INTERVALS = [5, 15, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600]
PROCESS_EVENT = "workers.jobs.process_event"
DRAIN = "workers.jobs.drain"


JOB_OPTIONS = {"result_ttl": 0, "failure_ttl": 30 * 24 * 3600, "timeout": 300}


def reconciliation_queue(queue: Queue) -> Queue:
    """The queue of reconciliation runs, on the same Redis as the event queue `queue`."""
    return Queue(RECONCILIATION_QUEUE_NAME, connection=queue.connection)


def _enqueue(queue: Queue, event_id: str, job_id: str, kind: str, due: bool, description: str):
    """Enqueue the job that applies `event_id`; None when RQ already holds a job of `job_id`."""
    try:
        return queue.enqueue_call(PROCESS_EVENT, args=(event_id,), kwargs={"kind": kind, "due": due}, job_id=job_id,
                                  unique=True, description=description, **JOB_OPTIONS)
    except DuplicateJobError:
        return None


def enqueue_event(queue: Queue, event_id: str):
    """Enqueue the job that applies one stored event (the receiver's, backfill's).

    The job id is derived from the event id so that RQ drops a second copy while the first
    is still queued; PostgreSQL remains the authority on "applied once" (this is only a filter).
    """
    return _enqueue(queue, event_id, f"event-{event_id}", "automatic", False, f"apply {event_id}")


def enqueue_attempt(queue: Queue, event_id: str, attempt: int):
    """Enqueue automatic attempt number `attempt` at an event (a second copy of the same attempt is dropped)."""
    return _enqueue(queue, event_id, f"event-{event_id}-attempt-{attempt}", "automatic", True,
                    f"apply {event_id} (attempt {attempt})")


def enqueue_replay(queue: Queue, event_id: str, replays_done: int):
    """Enqueue an operator's replay of an event; None when one is already waiting to run (they merge).

    The job id counts the replays already done (`replays_done`, from the attempts log): replays asked
    for while one is queued share its id, and once that one ran the next replay gets a new id. A replay
    job never fails into RQ's failed registry (a replay that cannot apply the event is logged in the
    ledger), and it is deleted when done (result_ttl 0)."""
    return _enqueue_merged(queue, event_id, f"event-{event_id}-replay-{replays_done + 1}", "replay",
                           f"replay {event_id}")


BULK_REPLAY = "workers.jobs.replay_matching"


def enqueue_bulk_replay(queue: Queue, *, status: str | None, since: str | None, account: str | None):
    """Enqueue a worker's replay of every matching event (workers.replays.replay_matching); one asked while
    the same is still waiting to run merges into it (None)."""
    whose = "all" if account is None else account or "platform"
    job_id = f"replay-matching-{status or 'any'}-{since or 'ever'}-{whose}"

    def enqueue():
        try:
            return queue.enqueue_call(BULK_REPLAY, kwargs={"status": status, "since": since, "account": account},
                                      job_id=job_id, unique=True, description=f"replay every {status or ''} event",
                                      **JOB_OPTIONS)
        except DuplicateJobError:
            return None
    return _ensure(queue, job_id, enqueue, keep=WAITING_TO_RUN + (JobStatus.STARTED,))


def enqueue_wake(queue: Queue, event_id: str):
    """Enqueue a wake-up of a waiting event (what it waited for was just recorded); merged with one queued."""
    return _enqueue_merged(queue, event_id, f"event-{event_id}-wake", "wake", f"wake {event_id}")


def _enqueue_merged(queue: Queue, event_id: str, job_id: str, kind: str, description: str):
    """Enqueue under job_id unless a job of that id is queued or running (then None)."""
    return _ensure(queue, job_id, lambda: _enqueue(queue, event_id, job_id, kind, True, description),
                   keep=WAITING_TO_RUN + (JobStatus.STARTED,))


WAITING_TO_RUN = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED)


def ensure_enqueued(queue: Queue, event_id: str):
    """Make sure a job will apply this event: keep a job still waiting to run under the event's
    canonical id, or replace one that ran and left the event unapplied (failed, stopped, or
    "started" by a worker that was killed: the sweep only asks for events no worker holds)."""
    return _ensure(queue, f"event-{event_id}", lambda: enqueue_event(queue, event_id))


def _ensure(queue: Queue, job_id: str, enqueue, keep: tuple = WAITING_TO_RUN):
    """enqueue() (None when RQ holds a job of job_id), else keep that job when its status is in `keep`,
    else replace it: RQ keeps the id of a job that ended (failed, stopped) until it expires, so
    `unique=True` alone would refuse forever."""
    for _ in range(3):  # the job may end and vanish between two of these steps (result_ttl 0): look again
        job = enqueue()
        if job is not None:
            return job
        try:
            existing = Job.fetch(job_id, connection=queue.connection)
            status = existing.get_status(refresh=True)
        except (NoSuchJobError, InvalidJobOperation):
            continue  # gone meanwhile: enqueue anew
        if status in keep:
            return None
        existing.delete()
    return enqueue()


# Draining: one job applies every received event (workers/draining.py). The receiver asks for one after
# each new event; the flag below makes that one Redis round trip (SET NX), and an RQ job only when no
# drain was asked for since the last one started. A drain job clears the flag before it claims anything,
# so an event stored after its last claim always gets a drain of its own. The flag expires, so a job lost
# with Redis cannot block drains for long; the sweep asks for a drain whenever received events wait.
#
# A drain that finds nothing left looks once more DRAIN_LINGER later before it ends, and one that ends
# early (its time is up, the worker stops) asks for the next. So a drain requested at time t claims
# everything committed before t + DRAIN_LINGER, and a web process that asked for a drain less than
# DRAIN_REQUEST_INTERVAL ago need not ask again (DrainRequests): under load that spares most webhooks the
# round trip. (Were that drain's worker killed, the sweep asks for another: a delay, never a loss.)
DRAIN_REQUESTED = "teachery:drain-requested"
DRAIN_REQUEST_TTL = 30  # seconds
DRAIN_LINGER = 0.1  # seconds
DRAIN_REQUEST_INTERVAL = DRAIN_LINGER / 2  # a margin for the time the request takes to reach Redis
SWEEP_DRAIN_ID = "drain-sweep"


def request_drain(queue: Queue):
    """Make sure a drain job runs after this call (the receiver's, after it stored an event)."""
    if not queue.connection.set(DRAIN_REQUESTED, 1, nx=True, ex=DRAIN_REQUEST_TTL):
        return None  # one is queued and has not started yet: it will see this event
    return queue.enqueue_call(DRAIN, description="drain the ledger", **JOB_OPTIONS)


class DrainRequests:
    """A web process's drain requests: at most one per DRAIN_REQUEST_INTERVAL (see above)."""

    def __init__(self, queue: Queue, clock=time.monotonic):
        self.queue = queue
        self.clock = clock
        self.last = float("-inf")

    def request(self) -> None:
        started = self.clock()  # before the request: the drain it asks for starts after this
        if started - self.last < DRAIN_REQUEST_INTERVAL:
            return
        request_drain(self.queue)
        self.last = started


def drain_started(queue: Queue) -> None:
    """A drain job starts: events stored from now on need another one."""
    queue.connection.delete(DRAIN_REQUESTED)


def ensure_drain(queue: Queue):
    """The sweep's drain: one queued at a time; one that ended or whose worker died is replaced."""
    def enqueue():
        try:
            return queue.enqueue_call(DRAIN, job_id=SWEEP_DRAIN_ID, unique=True, description="drain the ledger (sweep)",
                                      **JOB_OPTIONS)
        except DuplicateJobError:
            return None
    return _ensure(queue, SWEEP_DRAIN_ID, enqueue)


def failed_jobs(queue: Queue) -> list[dict]:
    """RQ's failed jobs on this queue, with the last line of their error and when they were enqueued and ended."""
    registry = queue.failed_job_registry
    rows = []
    for job_id in registry.get_job_ids():
        job = queue.fetch_job(job_id)
        if job is None:
            continue
        info = job.exc_info or ""
        rows.append({"id": job.id, "queue": queue.name, "description": job.description or "",
                     "enqueued_at": job.enqueued_at, "ended_at": job.ended_at,
                     "error": info.strip().splitlines()[-1] if info.strip() else ""})
    return rows


def requeue_failed(queue: Queue, job_ids: list[str] | None) -> tuple[int, list[str]]:
    """Requeue the named failed jobs (all when None); returns (requeued, ids not found)."""
    registry = queue.failed_job_registry
    present = set(registry.get_job_ids())
    wanted = sorted(present) if job_ids is None else job_ids
    missing = [j for j in wanted if j not in present]
    done = 0
    for job_id in wanted:
        if job_id in present:
            registry.requeue(job_id)
            done += 1
    return done, missing
