"""The scheduled reconciliation runs the clock enqueues (teachery_sync/clock.py): nightly and weekly.

nightly: a fixing run of every account over the objects an event named since the previous success that
covered every account (its start, less MARGIN); a full run when there is none. weekly: a full fixing
run of every account. Either is created with its trigger, run in the job, and each drifted object it
found is logged (origin `reconciliation`).

RQ's CronScheduler enqueues a job whenever its clock reaches the schedule's time, and every clock
process does so: two clocks enqueue twice. So a job first claims its slot (the schedule's time it was
enqueued for) in Redis, SET NX: the second job of one slot does nothing. (A run in progress of the same
scope is skipped as well.)
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import groupby

import structlog
from croniter import croniter

from domain import reconciliation_drift as drift_rows
from domain import reconciliations, run_history
from domain.reconciliations import Scope, ScopeBusy
from domain.times import iso
from workers import reconciliation
from workers.services import Services

log = structlog.get_logger(__name__)

SCHEDULES = ("nightly", "weekly")
MARGIN = timedelta(hours=1)  # the nightly run looks this much further back than the previous success
SLOT_TTL = 8 * 24 * 3600  # seconds: longer than a week, the weekly run's interval
DRIFT_PAGE = 500
CUSTOMER_DATA = ("name", "email")  # fields whose values the drift log lines leave out


def slot_of(cron: str, at: datetime) -> datetime:
    """The time of the schedule's slot that a job enqueued at `at` was enqueued for (UTC, to the minute)."""
    at = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)
    at += timedelta(microseconds=1)  # a job enqueued at the slot's very microsecond is of that slot
    return croniter(cron, at).get_prev(datetime)


def slot_key(schedule: str, slot: datetime) -> str:
    return f"teachery:scheduled:{schedule}:{slot:%Y-%m-%dT%H:%MZ}"


def scope_for(services: Services, schedule: str) -> Scope:
    """nightly: changed since the previous full success's start, less MARGIN (none: every object); weekly: all."""
    if schedule == "weekly":
        return Scope()
    with services.pool.connection() as conn:
        previous = run_history.last_full_start(conn)
    return Scope(changed_since=previous - MARGIN) if previous else Scope()


def run_scheduled(services: Services, schedule: str, cron: str, enqueued_at: datetime) -> str | None:
    """Create and run the scheduled run of `schedule` for the slot of `enqueued_at`; its final status, or
    None when skipped (the slot was taken by another job, or a run of the scope is in progress)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r} (ours: {', '.join(SCHEDULES)})")
    slot = slot_of(cron, enqueued_at)
    key = slot_key(schedule, slot)
    if not services.redis.set(key, 1, nx=True, ex=SLOT_TTL):
        log.info("scheduled reconciliation skipped: another job has this slot", schedule=schedule,
                 slot=iso(slot))
        return None
    try:
        scope = scope_for(services, schedule)
        with services.pool.connection() as conn:
            run_id = reconciliations.create(conn, scope, dry_run=False, trigger=schedule)
    except ScopeBusy as exc:
        log.warning("scheduled reconciliation skipped: a run of its scope is in progress", schedule=schedule,
                    slot=iso(slot), busy_run_id=exc.run_id)
        return None
    except BaseException:
        services.redis.delete(key)  # no run was made: a retried job may have the slot
        raise
    with structlog.contextvars.bound_contextvars(schedule=schedule, run_id=run_id):  # on every line meanwhile
        log.info("scheduled reconciliation started", slot=iso(slot), changed_since=iso(scope.changed_since))
        status = reconciliation.run(services, run_id)  # a failed run is raised: the job fails, RQ keeps it
        found = log_drift(services, run_id)
        log.info("scheduled reconciliation finished", status=status, drifted=found)
    return status


def log_drift(services: Services, run_id: str) -> int:
    """One line per drifted object the run found (its fields, and whether each was fixed); how many objects."""
    objects = 0
    # The rows come by object id, an object's fields one after the other (in the report's `seq` order they
    # need not: the lanes of a run record their accounts' drift at the same time).
    for _, rows in groupby(_drift_rows(services, run_id), key=lambda row: (row["account"], row["object"])):
        _log_object(run_id, list(rows))
        objects += 1
    return objects


def _drift_rows(services: Services, run_id: str) -> Iterator[dict]:
    """The run's drift rows by object, read page by page."""
    after = ("", "")
    while True:
        with services.pool.connection() as conn:
            page = drift_rows.page_by_object(conn, run_id, after, DRIFT_PAGE)
        if not page:
            return
        yield from page
        after = (page[-1]["object"], page[-1]["field"])


def _log_object(run_id: str, fields: list[dict]) -> None:
    row = fields[0]
    log.warning("reconciliation found drift", origin="reconciliation", run_id=run_id, account=row["account"],
                kind=row["kind"], object=row["object"], fixed=all(f["fixed"] for f in fields),
                fields={f["field"]: _values(f) for f in fields})


def _values(row: dict) -> dict:
    """A field's values for the log line, but for a customer's name and email: those are customer data,
    and logs travel further and are kept longer than the run's report, which shows them (admin API)."""
    if row["field"] in CUSTOMER_DATA:
        return {"fixed": row["fixed"]}
    return {"local": row["local"], "stripe": row["stripe"], "fixed": row["fixed"]}
