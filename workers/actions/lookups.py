"""The records an admin action names, or the answer that they are missing (404) or ambiguous (409)."""
from __future__ import annotations

from domain import customers, payments, subscriptions
from workers.commands import CommandRefused


def customer_of(pool, customer_id: str) -> customers.Customer:
    with pool.connection() as conn:
        row = customers.get(conn, customer_id)
    if row is None:
        raise CommandRefused(f"customer {customer_id} not found", 404)
    return row


def payment_of(pool, charge_id: str) -> payments.Payment:
    with pool.connection() as conn:
        return _only(payments.find_by_charge(conn, charge_id), f"payment {charge_id}")


def subscription_of(pool, sub_id: str) -> subscriptions.Subscription:
    with pool.connection() as conn:
        return _only(subscriptions.find(conn, sub_id), f"subscription {sub_id}")


def _only(rows: list, what: str):
    """The one row of a Stripe id looked up in every account."""
    if not rows:
        raise CommandRefused(f"{what} not found", 404)
    if len(rows) > 1:
        raise CommandRefused(f"{what} is known in several accounts", 409)
    return rows[0]
