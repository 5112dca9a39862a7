"""Putting work on RQ: one queue, jobs named after the event they apply."""
from __future__ import annotations

import uuid

from rq import Queue
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus

QUEUE_NAME = "teachery-events"
QUEUES = (QUEUE_NAME,)

# Backoff (seconds) between attempts at an event that waits on something not yet known, or hit a
# passing fault. The ledger keeps the attempts and the next attempt's time (so they survive Redis);
# the worker's sweep enqueues an attempt when its time comes; after the last one the event is
# `failed` and its job lands in RQ's failed registry. A wait is not a job failure.
# Why not RQ's Retry/enqueue_in: they need RQ's scheduler, which RQ runs in a *forked* process
# that inherits the worker's PostgreSQL sockets, so a killed worker's transaction (and its lock
# on the event) would outlive it.
RETRY_INTERVALS = [5, 15, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600]
PROCESS_EVENT = "workers.jobs.process_event"


JOB_OPTIONS = {"result_ttl": 0, "failure_ttl": 30 * 24 * 3600, "timeout": 300}


def enqueue_event(queue: Queue, event_id: str, *, replay: bool = False, fresh: bool = False, due: bool = False):
    """Enqueue the job that applies one stored event.

    The job id is derived from the event id so that RQ drops a second copy while the first
    is still queued; PostgreSQL remains the authority on "applied once" (this is only a filter).
    """
    job_id = f"event-{event_id}" if not (replay or fresh) else f"event-{event_id}-{uuid.uuid4().hex[:12]}"
    try:
        return queue.enqueue_call(
            PROCESS_EVENT, args=(event_id,), kwargs={"replay": replay, "due": due}, job_id=job_id,
            unique=not (replay or fresh), description=f"apply {event_id}", **JOB_OPTIONS,
        )
    except DuplicateJobError:
        return None


def enqueue_attempt(queue: Queue, event_id: str, attempt: int):
    """Enqueue attempt number `attempt` at an event (a second copy of the same attempt is dropped)."""
    try:
        return queue.enqueue_call(
            PROCESS_EVENT, args=(event_id,), kwargs={"due": True}, job_id=f"event-{event_id}-attempt-{attempt}",
            unique=True, description=f"apply {event_id} (attempt {attempt})", **JOB_OPTIONS,
        )
    except DuplicateJobError:
        return None


WAITING_TO_RUN = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED)


def ensure_enqueued(queue: Queue, event_id: str):
    """Make sure a job will apply this event: keep a job still waiting to run under the event's
    canonical id, or replace one that ran and left the event unapplied (failed, stopped, or
    "started" by a worker that was killed: the sweep only asks for events no worker holds)."""
    job = enqueue_event(queue, event_id)
    if job is not None:
        return job
    try:
        existing = Job.fetch(f"event-{event_id}", connection=queue.connection)
    except NoSuchJobError:
        return enqueue_event(queue, event_id)
    if existing.get_status(refresh=True) in WAITING_TO_RUN:
        return None
    existing.delete()
    return enqueue_event(queue, event_id)


def failed_jobs(queue: Queue) -> list[dict]:
    """RQ's failed jobs on this queue, with the last line of their error."""
    registry = queue.failed_job_registry
    rows = []
    for job_id in registry.get_job_ids():
        job = queue.fetch_job(job_id)
        if job is None:
            continue
        info = job.exc_info or ""
        rows.append({"id": job.id, "description": job.description or "",
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
