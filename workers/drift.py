"""Drift: how one Stripe object differs from our row, and fixing it by applying Stripe's object.

Kinds: customer, charge, refund, subscription (Stripe lists them), and payment: a payment we hold only
under a payment intent or invoice id (a placeholder: its charge never reached us) that no listed charge
matched, compared with that payment intent or invoice as Stripe answers it now (`read_placeholders`).
A charge is compared with its own row, else with the placeholder it takes over (same account, no charge
yet, its payment intent's or invoice's). A charge we hold nothing of is imported with what its events
would have said (workers/handlers/imports.py).

A fix applies Stripe's object (a FixObject command) through the same functions the event handlers use,
origin "reconciliation", stamped (the row's stripe_created, FETCHED): newer than the state we hold, yet
older than any later Stripe event, which still wins (docs/rules.md, rule 9).
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import structlog

from domain import reconciliations
from domain.accounts import to_api
from domain.reconciliations import ChargeRef, Scope
from domain.times import iso
from domain.versions import FETCHED
from workers.commands import FixObject, Report
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


def matched_placeholders(services: Services, account: str, charges: Iterable[dict]) -> list[int]:
    """Our row ids of the placeholders these listed charges are compared with (a loop reading charges page
    by page gathers them per page, for read_placeholders)."""
    with services.pool.connection() as conn:
        return [row["row_id"] for row in local_rows(conn, "charge", account, list(charges)).values()
                if row["stripe_charge_id"] is None]


def read_placeholders(services: Services, account: str, scope: Scope, matched: Iterable[int]) -> dict[str, dict]:
    """The `payment` kind's Stripe side, read once every charge in scope is listed: the payment intent (else
    invoice) of every placeholder in scope that no listed charge matched (`matched`: matched_placeholders),
    as Stripe answers it now, by id (one GET each; a placeholder whose object Stripe no longer has is left
    out)."""
    with services.pool.connection() as conn:
        ids = reconciliations.placeholders(conn, account, scope, list(matched))
    found = {}
    for object_id in ids:
        try:
            found[object_id] = read_object(services, account, "payment", object_id)
        except NotFound:
            log.warning("reconciliation: Stripe has no such object", object=object_id)
    return found


def read_object(services: Services, account: str, kind: str, object_id: str) -> dict:
    """Stripe's current object of one drift item (of a `payment` item: its pi_… or in_…), for a fix of it."""
    if kind == "payment":
        kind = "payment_intent" if object_id.startswith("pi_") else "invoice"
    return services.stripe.retrieve(kind, object_id, account=to_api(account))


def compare_account(services: Services, account: str, stripe_objects: dict) -> dict[str, list[dict]]:
    """Drift items by object id (objects without drift are left out)."""
    found = {}
    with services.pool.connection() as conn:
        for kind in KINDS:
            local = local_rows(conn, kind, account, list(stripe_objects[kind].values()))
            for object_id, obj in stripe_objects[kind].items():
                items = differences(kind, obj, local.get(object_id))
                if items:
                    found[object_id] = items
    return found


# --- fixing -------------------------------------------------------------------------------------------

def fix_account(services: Services, account: str, stripe_objects: dict, found: dict[str, list[dict]],
                report: Report) -> None:
    """Apply Stripe's object for every drifted object, each in its own transaction, then mark what is fixed."""
    label = f"{to_api(account) or 'platform'}: fixing"
    todo = [(kind, stripe_objects[kind][oid]) for kind in KINDS for oid in stripe_objects[kind] if oid in found]
    for done, (kind, obj) in enumerate(todo, 1):
        fix_object(services, FixObject(account, kind, obj))
        report(label, done, len(todo))
    with services.pool.connection() as conn:
        for kind in KINDS:
            ids = [obj["id"] for k, obj in todo if k == kind]
            local = local_rows(conn, kind, account, [stripe_objects[kind][i] for i in ids])
            for object_id in ids:
                left = {d["field"] for d in differences(kind, stripe_objects[kind][object_id], local.get(object_id))}
                for item in found[object_id]:
                    item["fixed"] = item["field"] not in left


def fix_object(services: Services, cmd: FixObject) -> None:
    """Apply one Stripe object as a reconciliation, in its own transaction, stamped with the version second
    of our row; an object that cannot be applied now is logged and left (the report shows it unfixed)."""
    with services.pool.connection() as conn:
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
