"""Which Stripe objects we hold, by id: for events that waited on an object another worker was recording."""
from __future__ import annotations

_TABLES = {
    "cus_": "SELECT 1 FROM customers WHERE account = %(a)s AND stripe_customer_id = %(id)s",
    "ch_": "SELECT 1 FROM payments WHERE account = %(a)s AND stripe_charge_id = %(id)s",
    "py_": "SELECT 1 FROM payments WHERE account = %(a)s AND stripe_charge_id = %(id)s",
    "sub_": "SELECT 1 FROM subscriptions WHERE account = %(a)s AND stripe_subscription_id = %(id)s",
}


def held(conn, account: str, object_id: str) -> bool:
    """True when a committed row of ours holds this Stripe object (READ COMMITTED sees the latest)."""
    for prefix, query in _TABLES.items():
        if object_id.startswith(prefix):
            return conn.execute(query, {"a": account, "id": object_id}).fetchone() is not None
    return False
