"""The records an admin action names, or the answer that they are missing (404) or ambiguous (409).

`scope` is the one account the asking token may act on ('' the platform, acct_…; None: every account):
a record of another account is answered exactly as one that does not exist."""
from __future__ import annotations

from domain import customers, payments, subscriptions
from workers.commands import CommandRefused


def customer_of(pool, customer_id: str, scope: str | None = None) -> customers.Customer:
    with pool.connection() as conn:
        row = customers.get(conn, customer_id)
    if row is None or (scope is not None and row.account != scope):
        raise CommandRefused(f"customer {customer_id} not found", 404)
    return row


def payment_of(pool, charge_id: str, scope: str | None = None) -> payments.Payment:
    with pool.connection() as conn:
        return _only(payments.find_by_charge(conn, charge_id), f"payment {charge_id}", scope)


def subscription_of(pool, sub_id: str, scope: str | None = None) -> subscriptions.Subscription:
    with pool.connection() as conn:
        return _only(subscriptions.find(conn, sub_id), f"subscription {sub_id}", scope)


def _only(rows: list, what: str, scope: str | None):
    """The one row of a Stripe id looked up in every account (in `scope`'s only, when given)."""
    if scope is not None:
        rows = [row for row in rows if row.account == scope]
    if not rows:
        raise CommandRefused(f"{what} not found", 404)
    if len(rows) > 1:
        raise CommandRefused(f"{what} is known in several accounts", 409)
    return rows[0]
