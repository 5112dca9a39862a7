"""The RQ worker: jobs run in this process (one pooled connection per process, no fork per job)."""
from __future__ import annotations

import structlog
from rq import SimpleWorker

from domain import ledger
from workers.queueing import enqueue_event, ensure_enqueued

log = structlog.get_logger(__name__)


def sweep_stranded(services, *, older_than_seconds: int = 60) -> int:
    """Enqueue events that no job will pick up: the receiver stored them while Redis was down,
    or a worker was killed mid-job. Safe to run any time: applying is idempotent."""
    with services.pool.connection() as conn:
        ids = ledger.stranded(conn, older_than_seconds=older_than_seconds)
    for event_id, status in ids:
        # A received event keeps its canonical job id, so a job still queued for it is not doubled;
        # a waiting one is overdue, so its retry job was lost (or no scheduler runs): a fresh job.
        if status == "waiting":
            enqueue_event(services.queue, event_id, fresh=True, due=True)
        else:
            ensure_enqueued(services.queue, event_id)
    if ids:
        log.info("re-enqueued stranded events", count=len(ids))
    return len(ids)


class EventWorker(SimpleWorker):
    """SimpleWorker that also sweeps the ledger for stranded events during maintenance."""

    services = None

    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        if self.services is not None:
            try:
                sweep_stranded(self.services)
            except Exception as exc:  # a sweep is best effort; the next one tries again
                log.warning("sweep failed", error=str(exc))
