"""/admin/api/reconciliations: start a reconciliation run (an RQ job) and read its report."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from domain.reconciliations import parse_request
from webhooks.parsing import json_body
from workers import reconciliation

bp = Blueprint("reconciliations", __name__)


def _error(message: str, status: int = 400):
    return jsonify({"error": message}), status


@bp.post("/reconciliations")
def start_reconciliation():
    services = current_app.extensions["teachery"]
    try:
        scope, dry_run = parse_request(json_body())
    except ValueError as exc:
        return _error(str(exc))
    run_id = reconciliation.create(services, scope, dry_run)
    try:
        reconciliation.enqueue(services, run_id)
    except Exception as exc:
        return _error(f"the run could not be queued (Redis: {exc}); it is marked failed", 503)
    return jsonify({"id": run_id}), 202


@bp.get("/reconciliations/<id:run_id>")
def get_reconciliation(run_id: str):
    body = reconciliation.report_of(current_app.extensions["teachery"], run_id)
    return jsonify(body) if body else _error(f"reconciliation {run_id} not found", 404)
