"""/admin/api/*: the read half (customers, profiles, the event ledger) and ledger replays."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from domain import ledger, profiles
from domain.accounts import to_api, to_key
from domain.ids import is_account_id
from domain.times import iso, parse_iso
from webhooks.errors import ApiError
from webhooks.parsing import query_int
from workers.replays import replay

bp = Blueprint("admin", __name__)



def _services():
    return current_app.extensions["teachery"]


def _not_found(what: str):
    raise ApiError(f"{what} not found", 404)


@bp.get("/customers")
def search_customers():
    q = request.args.get("q", "")
    if len(q) > 200:
        raise ApiError("q is too long (200 characters at most)")
    with _services().pool.connection() as conn:
        return jsonify({"customers": profiles.search(conn, q)})


@bp.get("/customers/<id:customer_id>")
def get_customer(customer_id: str):
    with _services().pool.connection() as conn:
        profile = profiles.profile_by_id(conn, customer_id)
    return jsonify(profile) if profile else _not_found(f"customer {customer_id}")


@bp.delete("/customers/<id:customer_id>")
def delete_customer(customer_id: str):
    allowed = sorted(set(current_app.create_url_adapter(request).allowed_methods()) - {"DELETE"})
    return jsonify({"error": "customers are never deleted"}), 405, {"Allow": ", ".join(allowed)}


@bp.get("/stripe-customers/<id:cus_id>")
def get_stripe_customer(cus_id: str):
    account = request.args.get("account") or None
    if account is not None and not is_account_id(account):
        raise ApiError("account must be an acct_… id")
    with _services().pool.connection() as conn:
        profile = profiles.profile_by_stripe_id(conn, to_key(account), cus_id)
    return jsonify(profile) if profile else _not_found(f"Stripe customer {cus_id}")


def _event_json(event: ledger.LedgerEvent) -> dict:
    return {
        "id": event.id,
        "type": event.type,
        "account": to_api(event.account),
        "status": event.status,
        "attempts": event.attempts,
        "received_at": event.received_at.strftime("%Y-%m-%dT%H:%M:%SZ") if event.received_at else None,
        "last_error": event.last_error,
    }


@bp.get("/events")
def list_events():
    status = request.args.get("status") or None
    if status is not None and status not in ledger.LIST_STATUSES:
        raise ApiError(f"status must be one of {', '.join(ledger.LIST_STATUSES)}")
    limit = query_int("limit", 100, 1, 1000)
    since = request.args.get("since") or None
    if since is not None:
        try:
            since = parse_iso(since)
        except ValueError:
            raise ApiError("since must be an ISO 8601 time, e.g. 2026-11-01T00:00:00Z") from None
    try:
        account = ledger.account_filter(request.args.get("account") or None)
    except ValueError as exc:
        raise ApiError(str(exc)) from None
    with _services().pool.connection() as conn:
        events = ledger.list_events(conn, status=status, type_=request.args.get("type") or None, since=since,
                                    account=account, object_id=request.args.get("object") or None,
                                    limit=limit)
    return jsonify({"events": [_event_json(e) for e in events]})


@bp.get("/events/<id:event_id>")
def get_event(event_id: str):
    with _services().pool.connection() as conn:
        event = ledger.get_event(conn, event_id, with_payload=True)
        if event is None:
            _not_found(f"event {event_id}")
        changes = ledger.changes_of(conn, event_id)
        attempts = ledger.attempts_log(conn, event_id)
    body = _event_json(event)
    body.update({
        "created": event.created,
        "api_version": event.api_version,
        "processed_at": event.processed_at.strftime("%Y-%m-%dT%H:%M:%SZ") if event.processed_at else None,
        "waiting_on": event.waiting_on,
        "source": event.source,
        "next_attempt_at": iso(event.next_attempt_at),
        "payload": event.payload,
        "changes": changes,
        "attempts_log": [a | {"at": iso(a["at"])} for a in attempts],
    })
    return jsonify(body)


@bp.post("/events/<id:event_id>/replay")
def replay_event(event_id: str):
    """An operator's extra attempt: the event keeps its status and retry schedule until the replay job
    runs; a replay asked for while another is still queued merges into it (`"merged": true`)."""
    services = _services()
    with services.pool.connection() as conn:
        event = ledger.get_event(conn, event_id)
    if event is None:
        _not_found(f"event {event_id}")
    done = replay(services, [event_id])  # Redis down: the app's 503, and nothing changed
    return jsonify({"id": event_id, "status": event.status, "merged": bool(done.merged)}), 202
