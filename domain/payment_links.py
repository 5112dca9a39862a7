"""Which invoice and subscription a charge, payment intent or invoice belongs to (see payment_links).

Learned from one payload, needed by another: a failed renewal charge names only its payment intent,
and the invoice that names both comes before or after it.
"""
from __future__ import annotations

from dataclasses import dataclass

from domain.sql import fetch_one, load

Q = load("payments")


@dataclass
class Billing:
    invoice_id: str | None = None
    subscription_id: str | None = None


def remember(conn, account: str, object_ids: list[str], invoice_id: str | None, subscription_id: str | None) -> None:
    """These objects (ch_, py_, pi_, in_) belong to this invoice and subscription (either may be None)."""
    ids = sorted({i for i in object_ids + [invoice_id] if i})
    if not ids or not (invoice_id or subscription_id):
        return
    conn.execute(Q.remember_links, {"a": account, "ids": ids, "inv": invoice_id, "sub": subscription_id})


def recall(conn, account: str, object_ids: list[str]) -> Billing:
    """The invoice and subscription remembered for any of these objects."""
    ids = [i for i in object_ids if i]
    if not ids:
        return Billing()
    return fetch_one(conn, Billing, Q.recall_links, {"a": account, "ids": ids}) or Billing()
