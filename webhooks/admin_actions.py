"""/admin/api/*: the actions (edit, revoke/grant, welcome email, links, refunds, cancel/pause/resume).

Routes only parse the request and answer; workers/admin_actions.py does the work. A client may send
an `Idempotency-Key` header so that a retried request is applied once (here and in Stripe).
"""
from __future__ import annotations

import time
import uuid

from flask import Blueprint, current_app, g, jsonify, request

from domain import links
from webhooks.errors import ApiError
from webhooks.parsing import json_body
from workers import admin_actions as actions
from workers.context import TEACHERY_KEY_PREFIX

bp = Blueprint("admin_actions", __name__)


@bp.errorhandler(actions.ActionError)
def _error(exc):
    return jsonify({"error": exc.message}), exc.status


def _services():
    return current_app.extensions["teachery"]


def _idempotency_key() -> str:
    """Our Stripe idempotency key: the client's Idempotency-Key header, or a new one per request."""
    given = request.headers.get("Idempotency-Key")
    if given is None:
        return f"{TEACHERY_KEY_PREFIX}{uuid.uuid4()}"
    if not given.strip() or len(given) > 200 or not given.isprintable():
        raise ApiError("Idempotency-Key must be 1 to 200 printable characters")
    return f"{TEACHERY_KEY_PREFIX}{given.strip()}"


def _act(action, *args, **kwargs):
    """Run a service-layer action with this app's pool and Stripe client, an idempotency key, and the
    name of the admin token that asked for it (webhooks/auth.py)."""
    svc = _services()
    status, body = action(svc.pool, svc.stripe, *args, idempotency_key=_idempotency_key(), actor=g.actor, **kwargs)
    return jsonify(body), status


@bp.patch("/customers/<id:customer_id>")
def edit_customer(customer_id: str):
    return _act(actions.edit_customer, customer_id, json_body())


COURSE_ACCESS = {"grant": True, "revoke": False}


@bp.post("/customers/<id:customer_id>/courses/<id:course_id>/<verb>")
def set_course_access(customer_id: str, course_id: str, verb: str):
    if verb not in COURSE_ACCESS:
        raise ApiError(f"no such course action {verb!r}: revoke or grant", 404)
    return _act(actions.set_course_access, customer_id, course_id, grant=COURSE_ACCESS[verb])


@bp.post("/customers/<id:customer_id>/welcome-email")
def welcome_email(customer_id: str):
    return _act(actions.send_welcome_email, _services().settings.teachery_base_url, customer_id)


@bp.get("/customers/<id:customer_id>/links")
def customer_links(customer_id: str):
    settings = _services().settings
    status, body = actions.customer_links(_services().pool, settings.teachery_base_url, links.link_key(settings),
                                          customer_id, int(time.time()))
    return jsonify(body), status


@bp.post("/payments/<id:charge_id>/refund")
def refund_payment(charge_id: str):
    return _act(actions.refund_payment, charge_id, json_body())


SUBSCRIPTION_ACTIONS = {
    "cancel": actions.cancel_subscription,
    "pause": actions.pause_subscription,
    "resume": actions.resume_subscription,
}


@bp.post("/subscriptions/<id:sub_id>/<verb>")
def change_subscription(sub_id: str, verb: str):
    if verb not in SUBSCRIPTION_ACTIONS:
        raise ApiError(f"no such subscription action {verb!r}: cancel, pause or resume", 404)
    return _act(SUBSCRIPTION_ACTIONS[verb], sub_id, json_body())
