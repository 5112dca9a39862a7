"""Putting work on RQ: one queue, jobs named after the event they apply."""
from __future__ import annotations

import uuid

from rq import Queue, Retry
from rq.exceptions import DuplicateJobError

QUEUE_NAME = "teachery-events"
QUEUES = (QUEUE_NAME,)

# Backoff for events that wait on something not yet known (or hit a passing fault).
RETRY_INTERVALS = [5, 15, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600]
PROCESS_EVENT = "workers.jobs.process_event"


def enqueue_event(queue: Queue, event_id: str, *, replay: bool = False, fresh: bool = False):
    """Enqueue the job that applies one stored event.

    The job id is derived from the event id so that RQ drops a second copy while the first
    is still queued; PostgreSQL remains the authority on "applied once" (this is only a filter).
    """
    job_id = f"event-{event_id}" if not (replay or fresh) else f"event-{event_id}-{uuid.uuid4().hex[:12]}"
    try:
        return queue.enqueue_call(
            PROCESS_EVENT,
            args=(event_id,),
            kwargs={"replay": replay},
            job_id=job_id,
            unique=not (replay or fresh),
            retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
            result_ttl=0,
            failure_ttl=30 * 24 * 3600,
            timeout=300,
            description=f"apply {event_id}",
        )
    except DuplicateJobError:
        return None


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
