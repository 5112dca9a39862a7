"""/admin/api/reconciliations: start a reconciliation run (an RQ job) and read its report."""
from __future__ import annotations

from flask import Blueprint, jsonify

from domain import reconciliations as runs
from domain.accounts import to_key
from domain.reconciliations import MAX_QUEUED_RUNS, NotApplicable, ScopeBusy, TooManyQueued
from webhooks import current
from webhooks.auth import scoped_run, sees, sees_run
from webhooks.errors import ApiError
from webhooks.parsing import from_query, json_body
from webhooks.reconciliation_report import report
from webhooks.schemas import DriftPage
from workers import reconciliation
from workers.commands import CommandRefused, ReconciliationAsked

bp = Blueprint("reconciliations", __name__)
RETRY_AFTER_SECONDS = 30  # the answer's Retry-After when too many runs are queued


@bp.post("/reconciliations")
def start_reconciliation():
    services = current.services()
    body = json_body()
    try:
        asked = ReconciliationAsked.parse({} if body is None else body)
    except CommandRefused as exc:
        raise ApiError(exc.message) from None
    if asked.account is not None and not sees(to_key(asked.account)):  # a scoped token names no other account
        raise ApiError(f"account {asked.account} not found", 404)
    try:
        run_id = reconciliation.create(services, scoped_run(asked.scope), bool(asked.dry_run),
                                       max_queued=MAX_QUEUED_RUNS)
    except ScopeBusy as exc:  # at most one run per scope at a time: here is the one
        return jsonify({"error": str(exc), "id": exc.run_id}), 409
    except TooManyQueued as exc:
        return jsonify({"error": str(exc)}), 429, {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return _queued(services, run_id)


@bp.post("/reconciliations/<id:run_id>/apply")
def apply_reconciliation(run_id: str):
    """A fixing run of a finished dry run's drift: 202 {"id"} of the new run."""
    services = current.services()
    _visible(services, run_id)
    try:
        new_id = reconciliation.create_applying(services, run_id, max_queued=MAX_QUEUED_RUNS)
    except NotApplicable as exc:
        return jsonify({"error": str(exc)}), 409
    except ScopeBusy as exc:  # a run applying it is queued or running: here is the one
        return jsonify({"error": f"a run applying reconciliation {run_id} is already queued or running: "
                                 f"{exc.run_id}", "id": exc.run_id}), 409
    except TooManyQueued as exc:
        return jsonify({"error": str(exc)}), 429, {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if new_id is None:
        raise ApiError(f"reconciliation {run_id} not found", 404)
    return _queued(services, new_id)


def _queued(services, run_id: str):
    try:
        reconciliation.enqueue(services, run_id)
    except Exception:
        raise ApiError("redis unavailable, retry later (the run was not queued; it is marked failed)", 503) from None
    return jsonify({"id": run_id}), 202


@bp.get("/reconciliations/<id:run_id>")
def get_reconciliation(run_id: str):
    """The run's report with a page of its drift (`limit`, `drift_after`)."""
    asked = from_query(DriftPage)
    with current.services().pool.connection() as conn:
        run = runs.get(conn, run_id)
        if run is None or not sees_run(run):
            raise ApiError(f"reconciliation {run_id} not found", 404)
        return jsonify(report(conn, run, after=asked.drift_after, limit=asked.limit))


def _visible(services, run_id: str) -> None:
    with services.pool.connection() as conn:
        run = runs.get(conn, run_id)
    if run is not None and not sees_run(run):
        raise ApiError(f"reconciliation {run_id} not found", 404)
