"""Reconciliation runs: compare our records with Stripe's objects, report the drift, and fix it.

Per account in scope: list customers, charges, refunds and subscriptions from Stripe, compare the
fields we keep with our rows, then (unless a dry run) fix the drift (workers/drift.py).
Afterwards the drifted objects are compared again: an item is `fixed` when it no longer differs (a
refund fixed can also fix its charge's amount_refunded).
"""
from __future__ import annotations

from datetime import datetime

import psycopg
import structlog
from rq.job import Job

from domain import reconciliations, run_history
from domain.accounts import in_scope, to_api
from domain.errors import first_line
from domain.reconciliations import Run, Scope
from workers.commands import Report, quiet
from workers.drift import KINDS, compare_account, fix_account, matched_placeholders, read_placeholders
from workers.queueing import reconciliation_queue
from workers.services import Services
from workers.stripe_api import NotFound, StripeUnavailable, paginate
from workers.stripe_objects import integer

log = structlog.get_logger(__name__)

RUN_RECONCILIATION = "workers.jobs.run_reconciliation"
LISTS = {"customer": "/v1/customers", "charge": "/v1/charges", "refund": "/v1/refunds",
         "subscription": "/v1/subscriptions"}


# --- starting a run ------------------------------------------------------------------------------

def create(services: Services, scope: Scope, dry_run: bool, *, max_queued: int | None = None) -> str:
    """A queued run row; returns its id (reconciliations.ScopeBusy, TooManyQueued: see there)."""
    with services.pool.connection() as conn:
        return reconciliations.create(conn, scope, dry_run, max_queued=max_queued)


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
        reconciliations.hold(holder, run_id)  # taken before the run is marked running; see fail_abandoned
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
        log.warning("reconciliation failed", run_id=run_id, error=f"{type(exc).__name__}: {first_line(exc)}")
        raise
    with services.pool.connection() as conn:
        reconciliations.finish(conn, run_id, "succeeded")
    return "succeeded"


def _reconcile(services: Services, run: Run, report: Report) -> None:
    with services.pool.connection() as conn:
        accounts = in_scope(conn, run.account)
    checked, drift = 0, []
    for account in accounts:
        stripe_objects = fetch_objects(services.stripe, account, run.scope, report)
        _deleted_unlisted(services, account, run.scope, stripe_objects["customer"])
        matched = matched_placeholders(services, account, stripe_objects["charge"].values())
        stripe_objects["payment"] = read_placeholders(services, account, run.scope, matched)
        found = compare_account(services, account, stripe_objects)
        checked += sum(len(objs) for objs in stripe_objects.values())
        if found and not run.dry_run:
            fix_account(services, account, stripe_objects, found, report)
        drift += [item for items in found.values() for item in items]
        with services.pool.connection() as conn:
            _record_drift_rows(conn, run.id, account, stripe_objects, found)
            reconciliations.save(conn, run.id, checked=checked, fixed=sum(1 for d in drift if d["fixed"]),
                                 drift=drift)


def _record_drift_rows(conn, run_id: str, account: str, stripe_objects: dict, found: dict[str, list[dict]]) -> None:
    """The account's drift items as rows of reconciliation_drift too (the scheduled runs' log, the metrics)."""
    for kind in KINDS:
        run_history.record_drift(conn, run_id, account, kind,
                                 [item for oid in stripe_objects[kind] if oid in found for item in found[oid]])


# --- Stripe's side ----------------------------------------------------------------------------------

def fetch_objects(stripe, account: str, scope: Scope, report: Report) -> dict[str, dict[str, dict]]:
    """Stripe's customers, charges, refunds and subscriptions in scope for one account, by kind and id."""
    api_account = to_api(account)
    label = f"{api_account or 'platform'}: reading Stripe"
    created = {"created": {"gte": int(scope.since.timestamp())}} if scope.since else {}
    by_customer = {"customer": scope.customer} if scope.customer else {}
    found: dict[str, dict[str, dict]] = {kind: {} for kind in KINDS}

    def take(kind: str, objects) -> None:
        for obj in objects:
            if isinstance(obj.get("id"), str):
                found[kind][obj["id"]] = obj
                report(label, sum(len(v) for v in found.values()), None)

    if scope.customer:
        take("customer", _one_customer(stripe, api_account, scope))
    else:
        take("customer", paginate(stripe, LISTS["customer"], account=api_account, **created))
    take("charge", paginate(stripe, LISTS["charge"], account=api_account, **by_customer, **created))
    if scope.customer:  # Stripe lists refunds by charge, not by customer
        for charge_id in list(found["charge"]):
            take("refund", paginate(stripe, LISTS["refund"], account=api_account, charge=charge_id, **created))
    else:
        take("refund", paginate(stripe, LISTS["refund"], account=api_account, **created))
    take("subscription", paginate(stripe, LISTS["subscription"], account=api_account, status="all",
                                  **by_customer, **created))
    return found


def _one_customer(stripe, api_account: str | None, scope: Scope) -> list[dict]:
    try:
        obj = stripe.retrieve("customer", scope.customer, account=api_account)
    except NotFound:
        return []
    return [obj] if _created_since(obj, scope.since) else []


def _created_since(obj: dict, since: datetime | None) -> bool:
    return since is None or obj.get("deleted") is True or integer(obj.get("created")) >= since.timestamp()


def _deleted_unlisted(services: Services, account: str, scope: Scope, listed: dict[str, dict]) -> None:
    """Customers we hold as live that Stripe no longer lists: ask for each; a deletion stub joins the list.

    Only without `since` (a `since` listing leaves older customers out on purpose)."""
    if scope.since is not None:
        return
    with services.pool.connection() as conn:
        missing = reconciliations.unlisted_customers(conn, account, scope.customer, list(listed))
    for cus_id in missing:
        try:
            obj = services.stripe.retrieve("customer", cus_id, account=to_api(account))
        except NotFound:
            continue
        if obj.get("deleted") is True:
            listed[cus_id] = obj


