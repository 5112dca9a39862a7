"""/admin/api/*: the actions (edit, revoke/grant, welcome email, links, refunds, cancel/pause/resume).

Routes only parse the request and answer; workers/admin_actions.py does the work. A client may send
an `Idempotency-Key` header so that a retried request is applied once (here and in Stripe).
"""
from __future__ import annotations

import time
import uuid

from flask import Blueprint, current_app, jsonify, request

from domain import links
from webhooks.admin import ApiError
from workers import admin_actions as actions
from workers.context import TEACHERY_KEY_PREFIX

bp = Blueprint("admin_actions", __name__)


@bp.errorhandler(ApiError)
@bp.errorhandler(actions.ActionError)
def _error(exc):
    return jsonify({"error": exc.message}), exc.status


def _services():
    return current_app.extensions["teachery"]


def _body():
    """The JSON body; {} when there is none."""
    if not request.get_data():
        return {}
    body = request.get_json(force=True, silent=True)
    if body is None:
        raise ApiError("the body must be a JSON object")
    return body


def _idempotency_key() -> str:
    """Our Stripe idempotency key: the client's Idempotency-Key header, or a new one per request."""
    given = request.headers.get("Idempotency-Key")
    if given is None:
        return f"{TEACHERY_KEY_PREFIX}{uuid.uuid4()}"
    if not given.strip() or len(given) > 200 or not given.isprintable():
        raise ApiError("Idempotency-Key must be 1 to 200 printable characters")
    return f"{TEACHERY_KEY_PREFIX}{given.strip()}"


def _answer(result: tuple[int, dict]):
    status, body = result
    return jsonify(body), status


@bp.patch("/customers/<customer_id>")
def edit_customer(customer_id: str):
    svc = _services()
    return _answer(actions.edit_customer(svc.pool, svc.stripe, customer_id, _body(),
                                         idempotency_key=_idempotency_key()))


@bp.post("/customers/<customer_id>/courses/<course_id>/revoke")
def revoke_course(customer_id: str, course_id: str):
    svc = _services()
    return _answer(actions.set_course_access(svc.pool, svc.stripe, customer_id, course_id, grant=False,
                                             idempotency_key=_idempotency_key()))


@bp.post("/customers/<customer_id>/courses/<course_id>/grant")
def grant_course(customer_id: str, course_id: str):
    svc = _services()
    return _answer(actions.set_course_access(svc.pool, svc.stripe, customer_id, course_id, grant=True,
                                             idempotency_key=_idempotency_key()))


@bp.post("/customers/<customer_id>/welcome-email")
def welcome_email(customer_id: str):
    svc = _services()
    return _answer(actions.send_welcome_email(svc.pool, svc.stripe, svc.settings.teachery_base_url, customer_id,
                                              idempotency_key=_idempotency_key()))


@bp.get("/customers/<customer_id>/links")
def customer_links(customer_id: str):
    svc = _services()
    return _answer(actions.customer_links(svc.pool, svc.settings.teachery_base_url, links.link_key(svc.settings),
                                          customer_id, int(time.time())))


@bp.post("/payments/<charge_id>/refund")
def refund_payment(charge_id: str):
    svc = _services()
    return _answer(actions.refund_payment(svc.pool, svc.stripe, charge_id, _body(),
                                          idempotency_key=_idempotency_key()))


@bp.post("/subscriptions/<sub_id>/cancel")
def cancel_subscription(sub_id: str):
    svc = _services()
    return _answer(actions.cancel_subscription(svc.pool, svc.stripe, sub_id, _body(),
                                               idempotency_key=_idempotency_key()))


@bp.post("/subscriptions/<sub_id>/pause")
def pause_subscription(sub_id: str):
    svc = _services()
    return _answer(actions.pause_subscription(svc.pool, svc.stripe, sub_id, _body(),
                                              idempotency_key=_idempotency_key()))


@bp.post("/subscriptions/<sub_id>/resume")
def resume_subscription(sub_id: str):
    svc = _services()
    return _answer(actions.resume_subscription(svc.pool, svc.stripe, sub_id, _body(),
                                               idempotency_key=_idempotency_key()))
