"""Customers: Teachery's Customer Activity page (search by name or email), the customer profile and the
Course Links page. The profile's buttons post to webhooks/console/customer_actions.py."""
from __future__ import annotations

import time
import uuid

from flask import Blueprint, render_template, request

from domain import profiles
from webhooks import current
from webhooks.auth import scope
from webhooks.console import customer_actions
from webhooks.console.amounts import as_written
from webhooks.console.customer_actions import load_profile, remaining
from workers.actions.customers import customer_links
from workers.handlers.subscriptions import ENDED
from workers.stripe_objects import REFUND_REASONS

bp = Blueprint("console_customers", __name__)
bp.register_blueprint(customer_actions.bp)  # endpoints console_customers.actions.*

PAGE_SIZE = 50
MAX_QUERY = 200  # as the API's q
MAX_KEY = 1000
REFUNDABLE = ("succeeded", "partially_refunded")


@bp.context_processor
def _forms():
    """What the profile's forms need: a fresh idempotency key per rendered form (a double submit or a
    browser's retry of that form is applied once, here and in Stripe), the refund reasons Stripe takes,
    and amounts as people write them."""
    return {"new_key": lambda: str(uuid.uuid4()), "refund_reasons": REFUND_REASONS,
            "as_written": as_written}


@bp.get("/customers")
def search():
    q = request.args.get("q", "").strip()
    after = (request.args.get("after", ""), request.args.get("after_id", ""))
    page, error = None, None
    if len(q) > MAX_QUERY:
        error = f"That search is too long: {MAX_QUERY} characters at most."
    elif len(after[0]) > MAX_KEY or len(after[1]) > MAX_KEY:
        error = "That page link is broken: search again."
    elif q:
        with current.services().pool.connection() as conn:
            page = profiles.search_page(conn, q, after=after, limit=PAGE_SIZE, account=scope())
    status = 400 if error else 200
    return render_template("console/customers.html", q=q, page=page, error=error, later_page=bool(after[1])), status


def _links(customer_id: str) -> tuple[dict | None, str | None]:
    """The customer's course links, or why there are none (no secret to sign the password-reset link)."""
    try:
        return customer_links(current.services(), customer_id, int(time.time()), scope()), None
    except ValueError as exc:  # domain/links.py link_key: neither TEACHERY_LINK_SECRET nor a webhook secret
        return None, str(exc)


@bp.get("/customers/<id:customer_id>")
def profile(customer_id: str):
    found = load_profile(customer_id)
    links, links_error = _links(customer_id)
    return render_template("console/profile.html", c=found, links=links, links_error=links_error,
                           activity=list(reversed(found["activity"])), remaining=remaining,
                           refundable=REFUNDABLE, ended=ENDED)


@bp.get("/customers/<id:customer_id>/links")
def links(customer_id: str):
    found = load_profile(customer_id)
    shown, error = _links(customer_id)
    return render_template("console/links.html", c=found, links=shown, links_error=error)
