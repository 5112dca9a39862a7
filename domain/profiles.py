"""Read model: the customer profile and customer search, as the admin API shows them."""
from __future__ import annotations

from functools import cache
from importlib import resources



@cache
def _profile_sql(where: str) -> str:
    text = resources.files("domain.sql").joinpath("profile.sql").read_text()
    return text.replace("{where}", where)


def profile_by_id(conn, customer_id: str) -> dict | None:
    row = conn.execute(_profile_sql("c.id = %(id)s"), {"id": customer_id}).fetchone()
    return row[0] if row else None


def profile_by_stripe_id(conn, account: str, stripe_customer_id: str) -> dict | None:
    row = conn.execute(
        _profile_sql("c.account = %(account)s AND c.stripe_customer_id = %(cus)s"),
        {"account": account, "cus": stripe_customer_id},
    ).fetchone()
    return row[0] if row else None


def _like_pattern(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(conn, q: str, *, limit: int = 100) -> list[dict]:
    """Customers whose name or email contains q, case-insensitively."""
    rows = conn.execute(
        "SELECT id, NULLIF(account, ''), stripe_customer_id, name, email FROM customers"
        " WHERE lower(name) LIKE %(p)s OR lower(email) LIKE %(p)s"
        " ORDER BY lower(coalesce(name, email, '')), id LIMIT %(limit)s",
        {"p": _like_pattern(q), "limit": limit},
    ).fetchall()
    return [
        {"id": r[0], "account": r[1], "stripe_customer_id": r[2], "name": r[3], "email": r[4]}
        for r in rows
    ]
