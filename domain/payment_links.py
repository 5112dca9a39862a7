"""Which invoice and subscription a charge, payment intent or invoice belongs to (see payment_links).

Learned from one payload, needed by another: a failed renewal charge names only its payment intent,
and the invoice that names both comes before or after it.
"""
from __future__ import annotations

from dataclasses import dataclass

REMEMBER = """
INSERT INTO payment_links (account, object_id, invoice_id, subscription_id)
SELECT %(a)s, o, CASE WHEN o = %(inv)s THEN NULL ELSE %(inv)s END, %(sub)s FROM unnest(%(ids)s::text[]) AS o
ON CONFLICT (account, object_id) DO UPDATE SET
    invoice_id = COALESCE(payment_links.invoice_id, EXCLUDED.invoice_id),
    subscription_id = COALESCE(payment_links.subscription_id, EXCLUDED.subscription_id)
"""

RECALL = """
SELECT (array_agg(l.invoice_id) FILTER (WHERE l.invoice_id IS NOT NULL))[1],
       COALESCE((array_agg(l.subscription_id) FILTER (WHERE l.subscription_id IS NOT NULL))[1],
                (SELECT i.subscription_id FROM payment_links i WHERE i.account = %(a)s
                   AND i.object_id = (array_agg(l.invoice_id) FILTER (WHERE l.invoice_id IS NOT NULL))[1]))
FROM payment_links l WHERE l.account = %(a)s AND l.object_id = ANY(%(ids)s)
"""


@dataclass
class Billing:
    invoice_id: str | None = None
    subscription_id: str | None = None


def remember(conn, account: str, object_ids: list[str], invoice_id: str | None, subscription_id: str | None) -> None:
    """These objects (ch_, py_, pi_, in_) belong to this invoice and subscription (either may be None)."""
    ids = sorted({i for i in object_ids + [invoice_id] if i})
    if not ids or not (invoice_id or subscription_id):
        return
    conn.execute(REMEMBER, {"a": account, "ids": ids, "inv": invoice_id, "sub": subscription_id})


def recall(conn, account: str, object_ids: list[str]) -> Billing:
    """The invoice and subscription remembered for any of these objects."""
    ids = [i for i in object_ids if i]
    if not ids:
        return Billing()
    row = conn.execute(RECALL, {"a": account, "ids": ids}).fetchone()
    return Billing(row[0], row[1]) if row else Billing()
