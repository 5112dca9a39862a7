"""Customers, keyed by (account, Stripe customer id). Never deleted."""
from __future__ import annotations

from dataclasses import dataclass

from domain.sql import fetch_one, load
from domain.versions import Versioned

Q = load("customers")


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


def lock(conn, account: str, stripe_customer_id: str) -> Customer | None:
    """The customer row, locked for this transaction."""
    return fetch_one(conn, Customer, Q.lock, {"a": account, "c": stripe_customer_id})


def get(conn, customer_id: str) -> Customer | None:
    return fetch_one(conn, Customer, Q.get, {"id": customer_id})


def insert(conn, account: str, stripe_customer_id: str, *, name, email, deleted: bool,
           version: tuple[int, int]) -> Customer | None:
    """Insert a new customer; None when another transaction created it first."""
    return fetch_one(conn, Customer, Q.insert, {"a": account, "c": stripe_customer_id, "name": name, "email": email,
                                                "deleted": deleted, "created": version[0], "rank": version[1]})


def update(conn, customer_id: str, *, name, email, deleted: bool, version: tuple[int, int] | None) -> None:
    conn.execute(Q.update, {"id": customer_id, "name": name, "email": email, "deleted": deleted,
                            "created": version[0] if version else None, "rank": version[1] if version else None})
