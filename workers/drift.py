"""Drift: how one Stripe object differs from our row, and fixing it by applying Stripe's object.

Kinds: customer, charge, refund, subscription (Stripe lists them), and payment: a payment we hold only
under a payment intent or invoice id (a placeholder: its charge never reached us) that no listed charge
matched, compared with that payment intent or invoice as Stripe answers it now (`read_object`).
A charge is compared with its own row, else with the placeholder it takes over (same account, no charge
yet, its payment intent's or invoice's). A charge we hold nothing of is imported with what its events
would have said (workers/handlers/imports.py).

A fix applies Stripe's object (a FixObject command) through the same functions the event handlers use,
origin "reconciliation", stamped (the row's stripe_created, FETCHED): newer than the state we hold, yet
older than any later Stripe event, which still wins (docs/rules.md, rule 9).
"""
from __future__ import annotations

from datetime import datetime

import structlog

from domain import reconciliations
from domain.accounts import to_api
from domain.reconciliations import ChargeRef
from domain.times import iso
from domain.versions import FETCHED
from workers.commands import FixObject
from workers.context import Change, Waiting
from workers.handlers.charges import snapshot_refund
from workers.handlers.customers import snapshot_customer
from workers.handlers.imports import apply_placeholder, import_charge, import_subscription, placeholder_state
from workers.handlers.refunds import refund_status
from workers.handlers.subscriptions import state_of
from workers.processing import CONFLICTS
from workers.services import Services
from workers.stripe_api import NotFound, StripeRejected
from workers.stripe_objects import charge_status, integer, ref

log = structlog.get_logger(__name__)

# The order of fixes: owners before what they own; placeholders last (a charge fixed may take one over).
KINDS = ("customer", "charge", "refund", "subscription", "payment")
FIXES = {"customer": snapshot_customer, "charge": import_charge, "refund": snapshot_refund,
         "subscription": import_subscription, "payment": apply_placeholder}
UNFIXABLE = (Waiting, NotFound, StripeRejected, ValueError, *CONFLICTS)


# --- comparing --------------------------------------------------------------------------------------

def stripe_fields(kind: str, obj: dict) -> dict:
    """The fields we keep of a Stripe object, normalised as our rows hold them."""
    if kind == "customer":
        fields = {"deleted_in_stripe": obj.get("deleted") is True}
        if "name" in obj or "email" in obj:  # a deletion stub says nothing of them
            fields.update(name=obj.get("name"), email=obj.get("email"))
        return fields
    if kind == "subscription":
        return state_of(obj)
    if kind == "charge":
        return {"stripe_charge_id": obj.get("id"), "amount": integer(obj.get("amount")),
                "currency": obj.get("currency"), "status": charge_status(obj),
                "amount_refunded": integer(obj.get("amount_refunded"))}
    if kind == "payment":
        return placeholder_state(obj)
    return {"amount": integer(obj.get("amount")), "status": refund_status(obj)}


def differences(kind: str, obj: dict, local: dict | None) -> list[dict]:
    """Drift items of one object: each field whose value differs, or `exists` when we lack it."""
    if local is None:
        return [{"object": obj["id"], "field": "exists", "local": False, "stripe": True, "fixed": False}]
    return [{"object": obj["id"], "field": field, "local": _json(local[field]), "stripe": _json(value),
             "fixed": False}
            for field, value in stripe_fields(kind, obj).items() if local[field] != value]


def _json(value):
    return iso(value) if isinstance(value, datetime) else value


def local_rows(conn, kind: str, account: str, objects: list[dict]) -> dict[str, dict]:
    """Our side of the comparison for these Stripe objects of one kind, by Stripe id: a charge's own row,
    else the placeholder a succeeded charge takes over."""
    if kind == "charge":
        return reconciliations.local_charges(conn, account, [
            ChargeRef(obj["id"], ref(obj.get("payment_intent")), ref(obj.get("invoice")),
                      charge_status(obj) == "succeeded") for obj in objects])
    return reconciliations.local_rows(conn, kind, account, [obj["id"] for obj in objects])


def read_object(services: Services, account: str, kind: str, object_id: str) -> dict:
    """Stripe's current object of one drift item (of a `payment` item: its pi_… or in_…), for a fix of it."""
    if kind == "payment":
        kind = "payment_intent" if object_id.startswith("pi_") else "invoice"
    return services.stripe.retrieve(kind, object_id, account=to_api(account))


_READ = object()  # fix_object's `local` when the caller has not read it


def fix_object(services: Services, cmd: FixObject, conn=None, local: dict | None = _READ) -> None:
    """Apply one Stripe object as a reconciliation, in its own transaction, stamped with the version second
    of our row; an object that cannot be applied now is logged and left (the report shows it unfixed).
    `conn`: a connection to do it on (a run's own), else one of the pool's; `local`: our row as local_rows
    just read it (None: we hold none), else it is read here."""
    if conn is None:
        with services.pool.connection() as pooled:
            _fix(services, cmd, pooled, local)
    else:
        _fix(services, cmd, conn, local)


def _fix(services: Services, cmd: FixObject, conn, local: dict | None) -> None:
    if local is _READ:
        local = local_rows(conn, cmd.kind, cmd.account, [cmd.obj]).get(cmd.obj["id"])
        conn.commit()
    stamp = local["stripe_created"] if local else 0
    change = Change(conn, cmd.account, services.stripe, origin="reconciliation", stamp=stamp)
    try:
        with conn.transaction():
            FIXES[cmd.kind](change, cmd.obj, (stamp, FETCHED))
            change.flush()
    except UNFIXABLE as exc:
        log.warning("reconciliation could not fix", object=cmd.obj["id"], error=str(exc))
