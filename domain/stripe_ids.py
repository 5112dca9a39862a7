"""Which Stripe objects we hold, by id: for events that waited on an object another worker was recording."""
from __future__ import annotations

from domain.sql import fetch_value, load

_HELD = {
    "cus_": load("customers").customer_held,
    "ch_": load("payments").charge_held,
    "py_": load("payments").charge_held,
    "sub_": load("subscriptions").subscription_held,
}


def held(conn, account: str, object_id: str) -> bool:
    """True when a committed row of ours holds this Stripe object (READ COMMITTED sees the latest)."""
    for prefix, query in _HELD.items():
        if object_id.startswith(prefix):
            return fetch_value(conn, query, {"a": account, "id": object_id}) is not None
    return False
