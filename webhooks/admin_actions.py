"""/admin/api/*: the actions (edit, revoke/grant, welcome email, links, refunds, cancel/pause/resume).

Routes only turn the request into a command (workers/commands.py validates its body) and answer what
the service layer says. A client may send an `Idempotency-Key` header so that a retried request is
applied once (here and in Stripe).
"""
from __future__ import annotations

import time
import uuid

from flask import Blueprint, g, jsonify, request

from webhooks.auth import scope
from webhooks.current import services
from webhooks.errors import ApiError, error
from webhooks.parsing import json_body
from workers import commands
from workers.actions.customers import customer_links as links_of
from workers.command_table import handle
from workers.context import TEACHERY_KEY_PREFIX

bp = Blueprint("admin_actions", __name__)


@bp.errorhandler(commands.CommandRefused)
def _error(exc):
    return error(exc.message, exc.status)


def _idempotency_key() -> str:
    """Our Stripe idempotency key: the client's Idempotency-Key header, or a new one per request."""
    given = request.headers.get("Idempotency-Key")
    if given is None:
        return f"{TEACHERY_KEY_PREFIX}{uuid.uuid4()}"
    if not given.strip() or len(given) > 200 or not given.isprintable():
        raise ApiError("Idempotency-Key must be 1 to 200 printable characters")
    return f"{TEACHERY_KEY_PREFIX}{given.strip()}"


def _act(command_type, **fields):
    """Run the command with an idempotency key, the name of the admin token that asked for it and the
    account it may act on (webhooks/auth.py)."""
    status, body = handle(services(), command_type(idempotency_key=_idempotency_key(), actor=g.actor,
                                                   scope=scope(), **fields))
    return jsonify(body), status


@bp.patch("/customers/<id:customer_id>")
def edit_customer(customer_id: str):
    return _act(commands.EditCustomer, target=customer_id, asked=commands.CustomerChanges.parse(json_body()))


COURSE_ACCESS = {"grant": commands.GrantCourse, "revoke": commands.RevokeCourse}


@bp.post("/customers/<id:customer_id>/courses/<course:course_id>/<verb>")
def set_course_access(customer_id: str, course_id: str, verb: str):
    if verb not in COURSE_ACCESS:
        raise ApiError(f"no such course action {verb!r}: revoke or grant", 404)
    return _act(COURSE_ACCESS[verb], target=customer_id, course_id=course_id)


@bp.post("/customers/<id:customer_id>/welcome-email")
def welcome_email(customer_id: str):
    return _act(commands.SendWelcomeEmail, target=customer_id)


@bp.get("/customers/<id:customer_id>/links")
def customer_links(customer_id: str):
    return jsonify(links_of(services(), customer_id, int(time.time()), scope()))


@bp.post("/payments/<id:charge_id>/refund")
def refund_payment(charge_id: str):
    return _act(commands.RefundPayment, target=charge_id, asked=commands.RefundAsked.parse(json_body()))


SUBSCRIPTION_ACTIONS = {
    "cancel": (commands.CancelSubscription, commands.CancelAsked),
    "pause": (commands.PauseSubscription, commands.PauseAsked),
    "resume": (commands.ResumeSubscription, commands.NoBody),
}


@bp.post("/subscriptions/<id:sub_id>/<verb>")
def change_subscription(sub_id: str, verb: str):
    if verb not in SUBSCRIPTION_ACTIONS:
        raise ApiError(f"no such subscription action {verb!r}: cancel, pause or resume", 404)
    command_type, body_type = SUBSCRIPTION_ACTIONS[verb]
    return _act(command_type, target=sub_id, asked=body_type.parse(json_body()))
