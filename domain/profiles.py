"""Read model: the customer profile and customer search, as the admin API shows them."""
from __future__ import annotations

from domain.sql import compose, fetch_all, fetch_value, load

Q = load("profiles")
PROFILE_BY_ID = compose(Q.profile, customer=Q.customer_by_id)
PROFILE_BY_STRIPE_ID = compose(Q.profile, customer=Q.customer_by_stripe_id)


def profile_by_id(conn, customer_id: str) -> dict | None:
    return fetch_value(conn, PROFILE_BY_ID, {"id": customer_id})


def profile_by_stripe_id(conn, account: str, stripe_customer_id: str) -> dict | None:
    return fetch_value(conn, PROFILE_BY_STRIPE_ID, {"account": account, "cus": stripe_customer_id})


def _like_pattern(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(conn, q: str, *, limit: int = 100) -> list[dict]:
    """Customers whose name or email contains q, case-insensitively."""
    return fetch_all(conn, dict, Q.search, {"p": _like_pattern(q), "limit": limit})
