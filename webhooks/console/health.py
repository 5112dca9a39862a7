"""Health: the figures of /metrics for a person."""
from __future__ import annotations

from flask import Blueprint, render_template

from domain import ledger
from webhooks import current

bp = Blueprint("console_health", __name__)


@bp.get("/health", endpoint="overview")
def overview():
    with current.services().pool.connection() as conn:
        counts = ledger.status_counts(conn)
        oldest = ledger.oldest_unapplied_age(conn)
    return render_template("console/health.html", counts=counts, oldest=oldest)
