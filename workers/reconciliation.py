"""Reconciliation runs: compare our records with Stripe's objects, report the drift, and fix it.

A run streams: it reads Stripe a page at a time (workers/reconciliation_pages.py) and checks each page
(workers/reconciliation_check.py: compare, record the drift rows, fix unless a dry run, compare again),
recording its cursor as it goes; a run whose worker died is queued again by the sweep and resumed from
its cursor. A run may also apply a dry run: re-read the dry run's drifted objects and fix what still
differs.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import closing

import psycopg
import structlog
from rq.job import Job

from domain import reconciliation_drift as drift_rows
from domain import reconciliations
from domain.accounts import in_scope
from domain.errors import first_line
from domain.reconciliations import NotApplicable, Run, Scope
from workers.commands import Report, quiet
from workers.queueing import reconciliation_queue
from workers.reconciliation_check import Tally, check_page, run_connection
from workers.reconciliation_pages import Page, run_lanes
from workers.services import Services
from workers.stripe_api import StripeUnavailable

log = structlog.get_logger(__name__)

LANES_AT_ONCE = 4  # accounts a run reads side by side (each: a thread and a connection of its own)

RUN_RECONCILIATION = "workers.jobs.run_reconciliation"


# --- starting a run ------------------------------------------------------------------------------

def create(services: Services, scope: Scope, dry_run: bool, *, max_queued: int | None = None,
           trigger: str = "admin") -> str:
    """A queued run row; returns its id (reconciliations.ScopeBusy, TooManyQueued: see there)."""
    with services.pool.connection() as conn:
        return reconciliations.create(conn, scope, dry_run, max_queued=max_queued, trigger=trigger)


def create_applying(services: Services, dry_run_id: str, *, max_queued: int | None = None,
                    trigger: str = "admin") -> str | None:
    """A queued fixing run of a finished dry run's drift (its account and customer scope); None when there
    is no such run; NotApplicable when it is not a succeeded dry run; ScopeBusy when a run applying it
    is queued or running."""
    with services.pool.connection() as conn:
        dry = reconciliations.get(conn, dry_run_id)
        if dry is None:
            return None
        if not dry.dry_run or dry.status != "succeeded":
            raise NotApplicable(dry_run_id, "dry run" if dry.dry_run else "fixing run", dry.status)
        return reconciliations.create(conn, Scope(dry.account, dry.customer), False, max_queued=max_queued,
                                      trigger=trigger, applies=dry.id)


def job_id(run_id: str) -> str:
    return f"reconciliation-{run_id}"


def enqueue(services: Services, run_id: str) -> None:
    """Queue the run's job on the reconciliation queue (never the event queue: a long run must not hold
    up webhooks); when Redis refuses, the run ends failed (and the error is raised)."""
    try:
        reconciliation_queue(services.queue).enqueue_call(
            RUN_RECONCILIATION, args=(run_id,), job_id=job_id(run_id), timeout=3600, result_ttl=24 * 3600,
            failure_ttl=30 * 24 * 3600, description=f"reconciliation {run_id}")
    except Exception as exc:
        with services.pool.connection() as conn:
            reconciliations.finish(conn, run_id, "failed", f"could not be queued: {exc}")
        raise


def requeue_abandoned(services: Services) -> list[str]:
    """Queue again the runs left running by a worker that stopped (nobody holds their lock), with their
    job's own id: the next worker resumes each from its cursor."""
    with services.pool.connection() as conn:
        requeued = reconciliations.requeue_abandoned(conn)
    for run_id in requeued:
        enqueue(services, run_id)
    return requeued


def fail_lost(services: Services, older_than_seconds: int = 60) -> list[str]:
    """End as failed the queued runs whose job Redis no longer holds (lost with Redis's data): else their
    scope would stay busy for ever."""
    with services.pool.connection() as conn:
        queued = reconciliations.queued_before(conn, older_than_seconds)
    lost = [run_id for run_id in queued if not Job.exists(job_id(run_id), connection=services.redis)]
    with services.pool.connection() as conn:
        return [run_id for run_id in lost
                if reconciliations.fail_queued(conn, run_id, "its queued job was lost (Redis lost its data)")]


# --- running it -----------------------------------------------------------------------------------

def run(services: Services, run_id: str, report: Report = quiet) -> str:
    """Run a queued reconciliation to its end; returns its final status. A crash ends it failed, then raises."""
    with psycopg.connect(services.settings.database_url, autocommit=True) as holder:
        reconciliations.hold(holder, run_id)  # taken before the run is marked running; see requeue_abandoned
        return _run_held(services, run_id, report)


def _run_held(services: Services, run_id: str, report: Report) -> str:
    with services.pool.connection() as conn:
        claimed = reconciliations.claim(conn, run_id)
    if claimed is None:
        with services.pool.connection() as conn:
            current = reconciliations.get(conn, run_id)
        return current.status if current else "missing"
    try:
        if not services.stripe.configured:
            raise StripeUnavailable("STRIPE_API_KEY is not set: cannot read Stripe's objects")
        _reconcile(services, claimed, report)
    except BaseException as exc:  # the job never leaves a run `running` (timeouts and Ctrl-C included)
        with services.pool.connection() as conn:
            reconciliations.finish(conn, run_id, "failed", first_line(exc))
            drift_rows.forget_seen(conn, run_id)
        log.warning("reconciliation failed", run_id=run_id, error=f"{type(exc).__name__}: {first_line(exc)}")
        raise
    with services.pool.connection() as conn:
        reconciliations.finish(conn, run_id, "succeeded")
        drift_rows.forget_seen(conn, run_id)
    return "succeeded"


def _reconcile(services: Services, run: Run, report: Report) -> None:
    """Check every lane's pages (domain.reconciliations.lane_cursors), LANES_AT_ONCE lanes side by side,
    each on a connection of its own: every account has its own rate limit at Stripe, so two accounts read
    together take the time of the longer one. A lane that fails stops the others after their page."""
    tally = Tally(run.checked, dict(run.progress or {}))
    with services.pool.connection() as conn:
        left = reconciliations.estimate_left(conn, run)
        accounts = sorted(in_scope(conn, run.account))
        cursors = reconciliations.lane_cursors(run, accounts)
        if run.cursor and "lanes" not in run.cursor:  # recorded before lanes: in the lanes' form from now on
            reconciliations.set_cursor(conn, run.id, {"lanes": cursors})
    lanes = run_lanes(services, run, accounts, cursors)
    progress = Progress(report, None if left is None else run.checked + left)
    progress.show(tally.checked)
    stop = threading.Event()

    def check_lane(lane: str, pages: Iterator[Page]) -> None:
        with run_connection(services) as conn, closing(pages):
            for page in pages:
                if stop.is_set():
                    return
                check_page(services, run, tally, page, conn, lane=lane)
                progress.show(tally.checked)
            reconciliations.advance(conn, run.id, lane=lane, at={"done": True}, checked=0, progress={}, fixed=0)

    with ThreadPoolExecutor(max_workers=LANES_AT_ONCE, thread_name_prefix="reconciliation-lane") as lanes_pool:
        futures = [lanes_pool.submit(check_lane, lane, pages) for lane, pages in lanes.items()]
        try:
            for future in as_completed(futures):
                future.result()
        finally:  # the first failure (or Ctrl-C, a job's timeout) stops the lanes still running
            stop.set()


class Progress:
    """The run's `objects checked` for its caller's report, from whichever lane checked a page."""

    def __init__(self, report: Report, total: int | None):
        self.report, self.total = report, total
        self._lock = threading.Lock()

    def show(self, checked: int) -> None:
        with self._lock:
            if self.total is not None:
                self.total = max(self.total, checked)  # a guess from our row counts: Stripe may hold more
            self.report("objects checked", checked, self.total)
