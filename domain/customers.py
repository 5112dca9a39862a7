"""Customers, keyed by (account, Stripe customer id). Never deleted."""
from __future__ import annotations

from dataclasses import dataclass

from psycopg.rows import class_row

from domain.versions import Versioned


@dataclass
class Customer(Versioned):
    id: str
    account: str
    stripe_customer_id: str
    name: str | None
    email: str | None
    deleted_in_stripe: bool
    stripe_created: int
    stripe_rank: int


_COLS = "id, account, stripe_customer_id, name, email, deleted_in_stripe, stripe_created, stripe_rank"


def lock(conn, account: str, stripe_customer_id: str) -> Customer | None:
    """The customer row, locked for this transaction."""
    cur = conn.cursor(row_factory=class_row(Customer))
    return cur.execute(
        f"SELECT {_COLS} FROM customers WHERE account = %(a)s AND stripe_customer_id = %(c)s FOR UPDATE",
        {"a": account, "c": stripe_customer_id},
    ).fetchone()


def get(conn, customer_id: str) -> Customer | None:
    cur = conn.cursor(row_factory=class_row(Customer))
    return cur.execute(f"SELECT {_COLS} FROM customers WHERE id = %(id)s", {"id": customer_id}).fetchone()


def insert(conn, account: str, stripe_customer_id: str, *, name, email, deleted: bool,
           version: tuple[int, int]) -> Customer | None:
    """Insert a new customer; None when another transaction created it first."""
    cur = conn.cursor(row_factory=class_row(Customer))
    return cur.execute(
        "INSERT INTO customers (account, stripe_customer_id, name, email, deleted_in_stripe,"
        " stripe_created, stripe_rank)"
        " VALUES (%(a)s, %(c)s, %(name)s, %(email)s, %(deleted)s, %(created)s, %(rank)s)"
        f" ON CONFLICT DO NOTHING RETURNING {_COLS}",
        {"a": account, "c": stripe_customer_id, "name": name, "email": email, "deleted": deleted,
         "created": version[0], "rank": version[1]},
    ).fetchone()


def update(conn, customer_id: str, *, name, email, deleted: bool, version: tuple[int, int] | None) -> None:
    conn.execute(
        "UPDATE customers SET name = %(name)s, email = %(email)s, deleted_in_stripe = %(deleted)s,"
        " stripe_created = COALESCE(%(created)s, stripe_created), stripe_rank = COALESCE(%(rank)s, stripe_rank),"
        " updated_at = now() WHERE id = %(id)s",
        {"id": customer_id, "name": name, "email": email, "deleted": deleted,
         "created": version[0] if version else None, "rank": version[1] if version else None},
    )
