"""The RQ worker: jobs run in this process (one pooled connection per process, no fork per job)."""
from __future__ import annotations

import structlog
from rq import SimpleWorker

from domain import ledger, reconciliations
from workers.queueing import enqueue_attempt, ensure_enqueued

log = structlog.get_logger(__name__)


def sweep_stranded(services, *, older_than_seconds: int = 60) -> int:
    """Enqueue the events a job should take now: received ones no job picked up (stored while
    Redis was down, or their worker was killed), and waits whose retry time has come.
    Safe to run any time: applying is idempotent and job ids are unique per attempt."""
    with services.pool.connection() as conn:
        rows = ledger.stranded(conn, older_than_seconds=older_than_seconds)
    for event_id, status, attempts in rows:
        if status == "received":
            ensure_enqueued(services.queue, event_id)
        else:
            enqueue_attempt(services.queue, event_id, attempts + 1)
    if rows:
        log.info("enqueued events due for an attempt", count=len(rows))
    with services.pool.connection() as conn:
        ended = reconciliations.fail_abandoned(conn)
    if ended:
        log.warning("reconciliation runs left running by a stopped worker ended as failed", runs=ended)
    return len(rows)


SWEEP_SECONDS = 10  # how often an idle worker sweeps (RQ runs maintenance between dequeue waits)


class EventWorker(SimpleWorker):
    """SimpleWorker (jobs run in this process, on its connection pool) that sweeps the ledger for
    events due for an attempt during RQ's maintenance, every SWEEP_SECONDS."""

    services = None

    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        if self.services is not None:
            try:
                sweep_stranded(self.services)
            except Exception as exc:  # a sweep is best effort; the next one tries again
                log.warning("sweep failed", error=str(exc))
