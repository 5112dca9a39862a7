"""Events: the ledger, newest first, and one event's page with Replay."""
from __future__ import annotations

from flask import Blueprint, render_template

from domain import ledger
from webhooks import current

bp = Blueprint("console_events", __name__)


@bp.get("/events", endpoint="ledger")
def ledger_page():
    with current.services().pool.connection() as conn:
        events = ledger.list_events(conn, limit=50)
    return render_template("console/events.html", events=events)

