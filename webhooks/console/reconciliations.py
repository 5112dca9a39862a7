"""Reconciliations: the runs, newest first; start one; a run's page with its progress and drift."""
from __future__ import annotations

from flask import Blueprint, render_template

from domain import reconciliations as runs
from webhooks import current

bp = Blueprint("console_reconciliations", __name__)


@bp.get("/reconciliations", endpoint="runs")
def list_runs():
    with current.services().pool.connection() as conn:
        recent = runs.recent(conn, limit=50)
    return render_template("console/reconciliations.html", runs=recent)
