"""RQ job entry points. Thin: find the process's services, call the service layer."""
from __future__ import annotations

_services = None


def install(services) -> None:
    """Give this process's jobs their services (the worker command does this before working)."""
    global _services
    _services = services


def services():
    global _services
    if _services is None:  # started by a plain `rq worker`: build from the environment
        from teachery_sync.bootstrap import build

        _services = build().open()
    return _services


def process_event(event_id: str, replay: bool = False, due: bool = False, kind: str | None = None) -> str:
    """Apply one stored event to the records (idempotent); returns its ledger status.

    `kind`: automatic, wake or replay (see domain.ledger.AttemptKind); `replay` is how jobs queued
    before the attempts log said it."""
    from domain.ledger import AttemptKind
    from workers.processing import apply_event

    attempt = AttemptKind(kind) if kind else (AttemptKind.REPLAY if replay else AttemptKind.AUTOMATIC)
    return apply_event(services(), event_id, kind=attempt, due=due)


def drain() -> int:
    """Apply every event no worker has applied yet (see workers/draining.py); how many it took."""
    from workers import draining
    from workers.queueing import drain_started

    drain_started(services().queue)
    return draining.drain(services())


def run_reconciliation(run_id: str) -> str:
    from workers.reconciliation import run

    return run(services(), run_id)
