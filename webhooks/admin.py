"""/admin/api/*: the read half (customers, profiles, the event ledger) and ledger replays.
What each route accepts and answers is in webhooks/schemas.py."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from domain import ledger, profiles
from domain.accounts import to_key
from webhooks import current, schemas
from webhooks.auth import listed_account, scope, sees
from webhooks.errors import ApiError, error
from webhooks.parsing import from_query
from workers.replays import replay

bp = Blueprint("admin", __name__)


def _found(profile: dict | None, what: str):
    if profile is None or not sees(to_key(profile["account"])):  # another account's: as if it did not exist
        raise ApiError(f"{what} not found", 404)
    return jsonify(schemas.Profile.model_validate(profile).answer())


@bp.get("/customers")
def search_customers():
    query = from_query(schemas.CustomerSearch)
    with current.services().pool.connection() as conn:
        found = profiles.search(conn, query.q, account=scope())
    return jsonify(schemas.CustomerList(customers=found).answer())


@bp.get("/customers/<id:customer_id>")
def get_customer(customer_id: str):
    with current.services().pool.connection() as conn:
        profile = profiles.profile_by_id(conn, customer_id)
    return _found(profile, f"customer {customer_id}")


@bp.delete("/customers/<id:customer_id>")
def delete_customer(customer_id: str):
    allowed = sorted(set(current_app.create_url_adapter(request).allowed_methods()) - {"DELETE"})
    body, status = error("customers are never deleted", 405)
    return body, status, {"Allow": ", ".join(allowed)}


@bp.get("/stripe-customers/<id:cus_id>")
def get_stripe_customer(cus_id: str):
    query = from_query(schemas.StripeCustomerQuery)
    account = to_key(query.account) if query.account is not None or scope() is None else scope()
    with current.services().pool.connection() as conn:
        profile = profiles.profile_by_stripe_id(conn, account, cus_id)
    return _found(profile, f"Stripe customer {cus_id}")


@bp.get("/events")
def list_events():
    query = from_query(schemas.EventFilters)
    account, any_listed = listed_account(query.account)
    if not any_listed:  # a scoped token asked for another account's events
        return jsonify(schemas.EventList(events=[]).answer())
    with current.services().pool.connection() as conn:
        events = ledger.list_events(conn, status=query.status, type_=query.type, since=query.since,
                                    account=account, object_id=query.object_id, limit=query.limit)
    return jsonify(schemas.EventList(events=events).answer())


@bp.get("/events/<id:event_id>")
def get_event(event_id: str):
    with current.services().pool.connection() as conn:
        event = ledger.get_event(conn, event_id, with_payload=True)
        if event is None or not sees(event.account):
            raise ApiError(f"event {event_id} not found", 404)
        changes = ledger.changes_of(conn, event_id)
        attempts = ledger.attempts_log(conn, event_id)
    detail = schemas.EventDetail.model_validate(vars(event) | {"changes": changes, "attempts_log": attempts})
    return jsonify(detail.answer())


@bp.post("/events/<id:event_id>/replay")
def replay_event(event_id: str):
    """An operator's extra attempt: the event keeps its status and retry schedule until the replay job
    runs; a replay asked for while another is still queued merges into it (`"merged": true`)."""
    services = current.services()
    with services.pool.connection() as conn:
        event = ledger.get_event(conn, event_id)
    if event is None or not sees(event.account):
        raise ApiError(f"event {event_id} not found", 404)
    done = replay(services, [event_id])  # Redis down: the app's 503, and nothing changed
    return jsonify(schemas.ReplayAccepted(id=event_id, status=event.status, merged=bool(done.merged)).answer()), 202
