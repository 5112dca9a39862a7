"""Payments (one per charge) and their refunds (one per refund id)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from psycopg.rows import class_row

from domain.versions import Versioned

ACTIVE_REFUND_STATUSES = ("pending", "requires_action", "succeeded")


@dataclass
class Payment(Versioned):
    id: int
    account: str
    customer_id: str | None
    stripe_customer_id: str | None
    stripe_charge_id: str | None
    stripe_payment_intent_id: str | None
    stripe_invoice_id: str | None
    stripe_subscription_id: str | None
    course_id: str | None
    amount: int
    currency: str | None
    charge_status: str
    amount_refunded: int
    status: str
    created: datetime | None
    stripe_created: int
    stripe_rank: int


@dataclass
class Refund(Versioned):
    id: int
    stripe_refund_id: str
    payment_id: int | None
    amount: int
    status: str
    reason: str | None
    origin: str
    stripe_created: int
    stripe_rank: int


@dataclass
class PaymentFacts:
    """What one payload says about a payment; None means "does not say"."""
    charge_id: str | None = None
    payment_intent_id: str | None = None
    invoice_id: str | None = None
    subscription_id: str | None = None
    stripe_customer_id: str | None = None
    customer_id: str | None = None
    course_id: str | None = None
    amount: int | None = None
    currency: str | None = None
    charge_status: str | None = None
    created: datetime | None = None
    links: dict = field(default_factory=dict)


_P = ("id, account, customer_id, stripe_customer_id, stripe_charge_id, stripe_payment_intent_id, stripe_invoice_id,"
      " stripe_subscription_id, course_id, amount, currency, charge_status, amount_refunded, status, created,"
      " stripe_created, stripe_rank")
_R = "id, stripe_refund_id, payment_id, amount, status, reason, origin, stripe_created, stripe_rank"

# A charge's own row, else a placeholder (no charge yet) for its payment intent, else for its invoice.
LOCK_FOR_CHARGE = f"""
SELECT {_P} FROM payments
WHERE account = %(a)s AND (
      stripe_charge_id = %(charge)s
   OR (%(adopt)s AND stripe_charge_id IS NULL AND %(pi)s::text IS NOT NULL AND stripe_payment_intent_id = %(pi)s)
   OR (%(adopt)s AND stripe_charge_id IS NULL AND %(inv)s::text IS NOT NULL AND stripe_invoice_id = %(inv)s))
ORDER BY (stripe_charge_id IS NOT NULL) DESC, (stripe_payment_intent_id IS NOT NULL) DESC, id
LIMIT 1 FOR UPDATE
"""

# Any row a payment intent or invoice names, preferring a succeeded charge. A payload that says the
# payment succeeded never lands on a failed or pending attempt of the same intent or invoice: it waits
# in a placeholder for the charge that succeeded.
LOCK_FOR_REFERENCE = f"""
SELECT {_P} FROM payments
WHERE account = %(a)s AND (
      (%(pi)s::text IS NOT NULL AND stripe_payment_intent_id = %(pi)s)
   OR (%(inv)s::text IS NOT NULL AND stripe_invoice_id = %(inv)s))
  AND (NOT %(paid)s OR stripe_charge_id IS NULL OR charge_status = 'succeeded')
ORDER BY (charge_status = 'succeeded') DESC, (stripe_charge_id IS NOT NULL) DESC, id
LIMIT 1 FOR UPDATE
"""


def lock_for(conn, account: str, facts: PaymentFacts) -> Payment | None:
    cur = conn.cursor(row_factory=class_row(Payment))
    # Only a succeeded charge takes over a placeholder: a failed attempt of the same intent is its own row.
    params = {"a": account, "charge": facts.charge_id, "pi": facts.payment_intent_id, "inv": facts.invoice_id,
              "adopt": facts.charge_status in (None, "succeeded"), "paid": facts.charge_status == "succeeded"}
    if facts.charge_id:
        return cur.execute(LOCK_FOR_CHARGE, params).fetchone()
    if facts.payment_intent_id or facts.invoice_id:
        return cur.execute(LOCK_FOR_REFERENCE, params).fetchone()
    return None


ABSORB = f"""
WITH gone AS (
    DELETE FROM payments
    WHERE account = %(a)s AND id <> %(target)s AND stripe_charge_id IS NULL
      AND ((%(pi)s::text IS NOT NULL AND stripe_payment_intent_id = %(pi)s)
        OR (%(inv)s::text IS NOT NULL AND stripe_invoice_id = %(inv)s))
    RETURNING {_P}
), moved AS (
    UPDATE refunds SET payment_id = %(target)s WHERE payment_id IN (SELECT id FROM gone)
)
SELECT {_P} FROM gone
"""


def absorb_placeholders(conn, account: str, target: Payment) -> list[Payment]:
    """Merge placeholder rows for the target's payment intent or invoice into the target (a payload
    that links them arrived after both were recorded); returns the rows merged away."""
    if target.charge_status != "succeeded" or not (target.stripe_payment_intent_id or target.stripe_invoice_id):
        return []
    cur = conn.cursor(row_factory=class_row(Payment))
    return cur.execute(ABSORB, {"a": account, "target": target.id, "pi": target.stripe_payment_intent_id,
                                "inv": target.stripe_invoice_id}).fetchall()


def lock_by_charge(conn, account: str, charge_id: str) -> Payment | None:
    cur = conn.cursor(row_factory=class_row(Payment))
    return cur.execute(
        f"SELECT {_P} FROM payments WHERE account = %(a)s AND stripe_charge_id = %(c)s FOR UPDATE",
        {"a": account, "c": charge_id},
    ).fetchone()


def insert(conn, account: str, facts: PaymentFacts, version: tuple[int, int]) -> Payment | None:
    """A new payment row; None when a concurrent transaction inserted the same key first."""
    cur = conn.cursor(row_factory=class_row(Payment))
    return cur.execute(
        "INSERT INTO payments (account, customer_id, stripe_customer_id, stripe_charge_id, stripe_payment_intent_id,"
        " stripe_invoice_id, stripe_subscription_id, course_id, amount, currency, charge_status, status, created,"
        " stripe_created, stripe_rank)"
        " VALUES (%(a)s, %(customer_id)s, %(stripe_customer_id)s, %(charge_id)s, %(payment_intent_id)s,"
        " %(invoice_id)s, %(subscription_id)s, %(course_id)s, COALESCE(%(amount)s, 0), %(currency)s,"
        " COALESCE(%(charge_status)s, 'succeeded'), COALESCE(%(charge_status)s, 'succeeded'), %(created)s,"
        " %(v_created)s, %(v_rank)s)"
        f" ON CONFLICT DO NOTHING RETURNING {_P}",
        {"a": account, **{k: v for k, v in facts.__dict__.items() if k != "links"},
         "v_created": version[0], "v_rank": version[1]},
    ).fetchone()


def update(conn, payment_id: int, changes: dict, version: tuple[int, int] | None = None) -> None:
    """Set the given columns (names from a fixed set, values as parameters)."""
    allowed = {"customer_id", "stripe_customer_id", "stripe_charge_id", "stripe_payment_intent_id",
               "stripe_invoice_id", "stripe_subscription_id", "course_id", "amount", "currency",
               "charge_status", "created"}
    sets = [f"{col} = %({col})s" for col in changes if col in allowed]
    if version is not None:
        sets += ["stripe_created = %(v_created)s", "stripe_rank = %(v_rank)s"]
        changes = {**changes, "v_created": version[0], "v_rank": version[1]}
    if not sets:
        return
    conn.execute(f"UPDATE payments SET {', '.join(sets)}, updated_at = now() WHERE id = %(pid)s",
                 {**changes, "pid": payment_id})


RECOMPUTE = """
UPDATE payments p SET
    amount_refunded = t.total,
    status = CASE WHEN p.charge_status <> 'succeeded' THEN p.charge_status
                  WHEN t.total <= 0 THEN 'succeeded'
                  WHEN t.total >= p.amount THEN 'refunded'
                  ELSE 'partially_refunded' END,
    updated_at = now()
FROM (SELECT COALESCE(sum(amount) FILTER (WHERE status IN ('pending', 'requires_action', 'succeeded')), 0) AS total
      FROM refunds WHERE payment_id = %(pid)s) t
WHERE p.id = %(pid)s
RETURNING p.amount_refunded, p.status
"""


def recompute(conn, payment_id: int) -> tuple[int, str]:
    """Derive amount_refunded and status from the refunds; returns them."""
    row = conn.execute(RECOMPUTE, {"pid": payment_id}).fetchone()
    return row[0], row[1]


def refunds_total(conn, payment_id: int) -> int:
    """The sum of every refund we know for a payment, whatever its status."""
    return conn.execute("SELECT COALESCE(sum(amount), 0) FROM refunds WHERE payment_id = %(p)s",
                        {"p": payment_id}).fetchone()[0]


def lock_refund(conn, account: str, refund_id: str) -> Refund | None:
    cur = conn.cursor(row_factory=class_row(Refund))
    return cur.execute(
        f"SELECT {_R} FROM refunds WHERE account = %(a)s AND stripe_refund_id = %(r)s FOR UPDATE",
        {"a": account, "r": refund_id},
    ).fetchone()


def insert_refund(conn, account: str, payment: Payment, refund: dict, version: tuple[int, int]) -> Refund | None:
    cur = conn.cursor(row_factory=class_row(Refund))
    return cur.execute(
        "INSERT INTO refunds (account, stripe_refund_id, stripe_charge_id, payment_id, amount, currency, status,"
        " reason, origin, stripe_created, stripe_rank)"
        " VALUES (%(a)s, %(id)s, %(charge)s, %(pid)s, %(amount)s, %(currency)s, %(status)s, %(reason)s, %(origin)s,"
        " %(v_created)s, %(v_rank)s)"
        f" ON CONFLICT DO NOTHING RETURNING {_R}",
        {"a": account, "charge": payment.stripe_charge_id, "pid": payment.id, **refund,
         "v_created": version[0], "v_rank": version[1]},
    ).fetchone()


def update_refund(conn, refund_row_id: int, refund: dict, version: tuple[int, int]) -> None:
    conn.execute(
        "UPDATE refunds SET amount = %(amount)s, status = %(status)s, reason = %(reason)s,"
        " origin = CASE WHEN origin = 'teachery' THEN origin ELSE %(origin)s END,"
        " stripe_created = %(v_created)s, stripe_rank = %(v_rank)s, updated_at = now() WHERE id = %(rid)s",
        {**refund, "rid": refund_row_id, "v_created": version[0], "v_rank": version[1]},
    )


def move_refund(conn, refund_row_id: int, payment: Payment) -> None:
    """Attach a refund to the payment of the charge it names."""
    conn.execute("UPDATE refunds SET payment_id = %(pid)s, stripe_charge_id = %(charge)s, updated_at = now()"
                 " WHERE id = %(rid)s", {"pid": payment.id, "charge": payment.stripe_charge_id, "rid": refund_row_id})


def link_course(conn, account: str, object_ids: list[str], course_id: str) -> list[Payment]:
    """Give the course to payments of these objects that have none yet; returns those payments."""
    cur = conn.cursor(row_factory=class_row(Payment))
    return cur.execute(
        "UPDATE payments SET course_id = %(course)s, updated_at = now()"
        " WHERE account = %(a)s AND course_id IS NULL AND (stripe_charge_id = ANY(%(ids)s)"
        "   OR stripe_payment_intent_id = ANY(%(ids)s) OR stripe_invoice_id = ANY(%(ids)s)"
        "   OR stripe_subscription_id = ANY(%(ids)s))"
        f" RETURNING {_P}",
        {"a": account, "ids": object_ids, "course": course_id},
    ).fetchall()


def link_billing(conn, account: str, object_ids: list[str], invoice_id: str | None,
                 subscription_id: str | None) -> list[Payment]:
    """Give the invoice and subscription to payments of these objects that lack them; returns those
    payments. A pure invoice placeholder keeps its key: it is never given a second invoice."""
    cur = conn.cursor(row_factory=class_row(Payment))
    return cur.execute(
        "UPDATE payments SET stripe_invoice_id = COALESCE(stripe_invoice_id, %(inv)s),"
        " stripe_subscription_id = COALESCE(stripe_subscription_id, %(sub)s), updated_at = now()"
        " WHERE account = %(a)s AND (stripe_charge_id = ANY(%(ids)s) OR stripe_payment_intent_id = ANY(%(ids)s)"
        "   OR stripe_invoice_id = ANY(%(ids)s))"
        " AND ((stripe_invoice_id IS NULL AND %(inv)s::text IS NOT NULL)"
        "   OR (stripe_subscription_id IS NULL AND %(sub)s::text IS NOT NULL))"
        f" RETURNING {_P}",
        {"a": account, "ids": object_ids, "inv": invoice_id, "sub": subscription_id},
    ).fetchall()


def link_customer(conn, account: str, stripe_customer_id: str, customer_id: str) -> None:
    """Attach payments recorded before their customer was known."""
    conn.execute(
        "UPDATE payments SET customer_id = %(cid)s WHERE account = %(a)s AND stripe_customer_id = %(cus)s"
        " AND customer_id IS NULL",
        {"a": account, "cus": stripe_customer_id, "cid": customer_id},
    )


def find_by_charge(conn, charge_id: str) -> list[Payment]:
    """The payments of a charge id in every account (charge ids are unique in Stripe: one at most)."""
    cur = conn.cursor(row_factory=class_row(Payment))
    return cur.execute(f"SELECT {_P} FROM payments WHERE stripe_charge_id = %(c)s ORDER BY account",
                       {"c": charge_id}).fetchall()
