"""POST /webhooks/stripe: verify, record, enqueue, answer. Nothing else."""
from __future__ import annotations

import json
import re

import psycopg
import structlog
from flask import Blueprint, current_app, jsonify, request

from domain import ledger
from domain.ids import is_account_id
from webhooks.signature import BadSignature, verify
from workers.queueing import request_drain

bp = Blueprint("receiver", __name__)
log = structlog.get_logger(__name__)

_EVENT_ID = re.compile(r"evt_[A-Za-z0-9_]{1,250}")
MAX_TYPE_LENGTH = 200


def parse_event(body: bytes) -> dict:
    """The body as a Stripe event dict, or ValueError saying why it is not one."""
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ValueError("body is not JSON")
    if not isinstance(event, dict):
        raise ValueError("body is not a JSON object")
    if not isinstance(event.get("id"), str) or not _EVENT_ID.fullmatch(event["id"]):
        raise ValueError("not a Stripe event: `id` must be an evt_… id")
    if event.get("object") != "event":
        raise ValueError('not a Stripe event: `object` must be "event"')
    if not isinstance(event.get("type"), str) or not event["type"]:
        raise ValueError("not a Stripe event: `type` is missing")
    if len(event["type"]) > MAX_TYPE_LENGTH:
        raise ValueError(f"not a Stripe event: `type` is too long ({MAX_TYPE_LENGTH} characters at most)")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise ValueError("not a Stripe event: `data.object` is missing")
    account = event.get("account")
    if account is not None and not is_account_id(account):
        raise ValueError("not a Stripe event: `account` must be an acct_… id")
    created = event.get("created")
    if created is not None and (not isinstance(created, int) or isinstance(created, bool)):
        raise ValueError("not a Stripe event: `created` must be an integer timestamp")
    return event


@bp.post("/webhooks/stripe")
def receive_stripe_event():
    """Flask's way in (a chunked body, a query string); webhooks/fast_path.py takes the usual requests."""
    body = request.get_data(cache=False)  # MAX_CONTENT_LENGTH turns an oversized body into 413
    status, answer = receive(current_app.extensions["teachery"], body, request.headers.get("Stripe-Signature"))
    return jsonify(answer), status


def receive(services, body: bytes, signature: str | None) -> tuple[int, dict]:
    """Verify, record, ask for a drain: (HTTP status, JSON answer). Framework-free: both ways in use it."""
    settings = services.settings
    try:
        verify(body, signature, settings.webhook_secrets, settings.webhook_tolerance_seconds)
    except BadSignature as exc:
        return 400, {"error": f"signature verification failed: {exc}"}
    try:
        event = parse_event(body)
    except ValueError as exc:
        return 400, {"error": str(exc)}
    try:
        # The web's pool fails fast (domain/db.py): a 503 well inside Stripe's delivery timeout, so it
        # retries, and no thread is held waiting for a database that is down.
        with services.pool.connection() as conn:
            # One statement, its own transaction: one round trip instead of two (INSERT, COMMIT); the
            # answer still waits for the commit to be durable.
            conn.autocommit = True
            try:
                is_new = ledger.record_event(conn, event, raw=body)
                needs_job = is_new or _never_started(conn, event["id"])
            finally:
                conn.autocommit = False
    except RecursionError:
        return 400, {"error": "the event is nested too deeply to store"}
    except (psycopg.OperationalError, psycopg.errors.AdminShutdown, TimeoutError) as exc:
        log.error("event not stored: database unavailable", event_id=event["id"], error=str(exc))
        return 503, {"error": "event could not be stored; retry later"}
    except psycopg.Error as exc:
        if isinstance(exc, psycopg.DataError):  # e.g. a \u0000 escape, which jsonb refuses
            return 400, {"error": f"the event cannot be stored as given: {str(exc).splitlines()[0]}"}
        log.error("event not stored", event_id=event["id"], error=str(exc))
        return 503, {"error": "event could not be stored; retry later"}
    if needs_job:
        try:
            request_drain(services.queue)
        except Exception as exc:  # Redis down: the event is stored; the worker's sweep picks it up
            log.warning("event stored but not enqueued", event_id=event["id"], error=str(exc))
    log.info("event received", event_id=event["id"], type=event["type"], duplicate=not is_new)
    if is_new:
        return 200, {"received": True}
    return 200, {"received": True, "duplicate": True}


def _never_started(conn, event_id: str) -> bool:
    """A redelivered event whose first job was lost (Redis down at the time) is enqueued again."""
    row = conn.execute("SELECT status FROM events WHERE id = %(id)s", {"id": event_id}).fetchone()
    return bool(row) and row[0] == "received"
