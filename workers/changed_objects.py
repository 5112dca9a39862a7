"""The objects a Stripe event names, as (kind, id) pairs a reconciliation can re-read: the event's own
object when it is a customer, charge, refund or subscription, and the customer, charge or subscription
it points to."""
from __future__ import annotations

PREFIXES = {"cus_": "customer", "ch_": "charge", "py_": "charge", "re_": "refund", "pyr_": "refund",
            "sub_": "subscription"}
OBJECTS = {"customer": "customer", "charge": "charge", "refund": "refund", "subscription": "subscription"}
POINTERS = ("customer", "charge", "subscription")  # fields of an object that name another object by id


def _kind_of(object_id) -> str | None:
    if not isinstance(object_id, str):
        return None
    return next((kind for prefix, kind in PREFIXES.items() if object_id.startswith(prefix)), None)


def named(event: dict) -> list[tuple[str, str]]:
    """(kind, id) of every customer, charge, refund and subscription the event names, its own object first."""
    obj = ((event.get("data") or {}).get("object")) or {}
    if not isinstance(obj, dict):
        return []
    found: list[tuple[str, str]] = []
    own = OBJECTS.get(obj.get("object"))
    if own and isinstance(obj.get("id"), str):
        found.append((own, obj["id"]))
    for field in POINTERS:
        value = obj.get(field)
        if isinstance(value, dict):  # expanded
            value = value.get("id")
        kind = _kind_of(value)
        if kind == field and (kind, value) not in found:
            found.append((kind, value))
    return found
