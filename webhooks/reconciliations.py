"""/admin/api/reconciliations: start a reconciliation run (an RQ job) and read its report."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from domain.reconciliations import MAX_QUEUED_RUNS, ScopeBusy, TooManyQueued, parse_request
from webhooks.parsing import json_body
from workers import reconciliation

bp = Blueprint("reconciliations", __name__)
RETRY_AFTER_SECONDS = 30  # the answer's Retry-After when too many runs are queued


def _error(message: str, status: int = 400):
    return jsonify({"error": message}), status


@bp.post("/reconciliations")
def start_reconciliation():
    services = current_app.extensions["teachery"]
    try:
        scope, dry_run = parse_request(json_body())
    except ValueError as exc:
        return _error(str(exc))
    try:
        run_id = reconciliation.create(services, scope, dry_run, max_queued=MAX_QUEUED_RUNS)
    except ScopeBusy as exc:  # at most one run per scope at a time: here is the one
        return jsonify({"error": str(exc), "id": exc.run_id}), 409
    except TooManyQueued as exc:
        response = jsonify({"error": str(exc)})
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response, 429
    try:
        reconciliation.enqueue(services, run_id)
    except Exception:
        return _error("redis unavailable, retry later (the run was not queued; it is marked failed)", 503)
    return jsonify({"id": run_id}), 202


@bp.get("/reconciliations/<id:run_id>")
def get_reconciliation(run_id: str):
    body = reconciliation.report_of(current_app.extensions["teachery"], run_id)
    return jsonify(body) if body else _error(f"reconciliation {run_id} not found", 404)
