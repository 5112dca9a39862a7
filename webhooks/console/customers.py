"""Customers: Teachery's Customer Activity page (search by name or email) and the customer profile."""
from __future__ import annotations

from flask import Blueprint, render_template, request

from domain import profiles
from webhooks import current

bp = Blueprint("console_customers", __name__)


@bp.get("/customers")
def search():
    q = request.args.get("q", "").strip()
    found = None
    if q:
        with current.services().pool.connection() as conn:
            found = profiles.search(conn, q, limit=50)
    return render_template("console/customers.html", q=q, customers=found)
