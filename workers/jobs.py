"""RQ job entry points. Thin: take the services the worker command installed, call the service layer.

The services come from the composition root (`teachery-sync worker`, teachery_sync/worker_command.py),
never from here: a plain `rq worker` has none, and its jobs fail saying so.
"""
from __future__ import annotations

from datetime import UTC, datetime

from rq import get_current_job

from domain.ledger import AttemptKind
from workers import draining, reconciliation, replays, scheduled
from workers.processing import apply_event
from workers.queueing import drain_started
from workers.services import Services

_services: Services | None = None


def install(services: Services | None) -> None:
    """Give this process's jobs their services (the worker command does this before working)."""
    global _services
    _services = services


def services() -> Services:
    if _services is None:
        raise RuntimeError("no services installed: jobs run under `teachery-sync worker`, not a plain `rq worker`")
    return _services


def process_event(event_id: str, replay: bool = False, due: bool = False, kind: str | None = None) -> str:
    """Apply one stored event to the records (idempotent); returns its ledger status.

    `kind`: automatic, wake or replay (see domain.ledger.AttemptKind); `replay` is how jobs queued
    before the attempts log said it."""
    attempt = AttemptKind(kind) if kind else (AttemptKind.REPLAY if replay else AttemptKind.AUTOMATIC)
    return apply_event(services(), event_id, kind=attempt, due=due)


def drain() -> int:
    """Apply every event no worker has applied yet (see workers/draining.py); how many it took."""
    drain_started(services().queue)
    return draining.drain(services())


def replay_matching(status: str | None = None, since: str | None = None, account: str | None = None) -> int:
    """A bulk replay (workers/replays.py), a batch at a time; how many replays it queued."""
    done = replays.replay_matching(services(), status=status, since=datetime.fromisoformat(since) if since else None,
                                   account=account)
    return done.queued


def run_reconciliation(run_id: str) -> str:
    """Run a queued reconciliation (workers/reconciliation.py); its final status."""
    return reconciliation.run(services(), run_id)


def run_scheduled(schedule: str, cron: str) -> str | None:
    """The clock's nightly or weekly reconciliation (workers/scheduled.py), for the slot this job was
    enqueued for; its final status, None when skipped."""
    job = get_current_job()
    enqueued_at = job.enqueued_at if job is not None and job.enqueued_at else datetime.now(UTC)
    return scheduled.run_scheduled(services(), schedule, cron, enqueued_at)
