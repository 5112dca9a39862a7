"""Payments (one per charge) and their refunds (one per refund id)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

from psycopg import sql

from domain.sql import compose, fetch_all, fetch_one, fetch_value, load
from domain.versions import Versioned

Q = load("payments")
# The refund statuses that count toward a payment's refunded total (and status): a refund that fails or
# is canceled gives its amount back.
ACTIVE_REFUND_STATUSES = ("pending", "requires_action", "succeeded")
RECOMPUTE = compose(Q.recompute, counted=sql.SQL(", ").join(map(sql.Literal, ACTIVE_REFUND_STATUSES)))


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


def lock_for(conn, account: str, facts: PaymentFacts) -> Payment | None:
    """The row a payload's facts belong to, locked: its charge's, else a placeholder it takes over."""
    # Only a succeeded charge takes over a placeholder: a failed attempt of the same intent is its own row.
    params = {"a": account, "charge": facts.charge_id, "pi": facts.payment_intent_id, "inv": facts.invoice_id,
              "adopt": facts.charge_status in (None, "succeeded"), "paid": facts.charge_status == "succeeded"}
    if facts.charge_id:
        return fetch_one(conn, Payment, Q.lock_for_charge, params)
    if facts.payment_intent_id or facts.invoice_id:
        return fetch_one(conn, Payment, Q.lock_for_reference, params)
    return None


def absorb_placeholders(conn, account: str, target: Payment) -> list[Payment]:
    """Merge placeholder rows for the target's payment intent or invoice into the target (a payload
    that links them arrived after both were recorded); returns the rows merged away."""
    if target.charge_status != "succeeded" or not (target.stripe_payment_intent_id or target.stripe_invoice_id):
        return []
    return fetch_all(conn, Payment, Q.absorb_placeholders, {"a": account, "target": target.id,
                                                             "pi": target.stripe_payment_intent_id,
                                                             "inv": target.stripe_invoice_id})


def lock_by_charge(conn, account: str, charge_id: str) -> Payment | None:
    return fetch_one(conn, Payment, Q.lock_by_charge, {"a": account, "c": charge_id})


def insert(conn, account: str, facts: PaymentFacts, version: tuple[int, int]) -> Payment | None:
    """A new payment row; None when a concurrent transaction inserted the same key first."""
    return fetch_one(conn, Payment, Q.insert, {"a": account, **vars(facts), "v_created": version[0],
                                               "v_rank": version[1]})


UPDATABLE = ("customer_id", "stripe_customer_id", "stripe_charge_id", "stripe_payment_intent_id", "stripe_invoice_id",
             "stripe_subscription_id", "course_id", "amount", "currency", "charge_status", "created")


@cache
def _update_statement(columns: tuple[str, ...], versioned: bool) -> str:
    """The UPDATE of these columns (and of the version), once per combination."""
    changes = [sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(column)) for column in columns]
    if versioned:
        changes.append(sql.SQL(Q.set_version))
    return compose(Q.update, changes=sql.SQL(", ").join(changes))


def update(conn, payment_id: int, changes: dict, version: tuple[int, int] | None = None) -> None:
    """Set the given columns (those of UPDATABLE, values as parameters), and the version when given."""
    columns = tuple(column for column in changes if column in UPDATABLE)
    if not columns and version is None:
        return
    params = {**changes, "pid": payment_id}
    if version is not None:
        params.update(v_created=version[0], v_rank=version[1])
    conn.execute(_update_statement(columns, version is not None), params)


def recompute(conn, payment_id: int) -> tuple[int, str]:
    """Derive amount_refunded and status from the refunds; returns them."""
    amount_refunded, status = conn.execute(RECOMPUTE, {"pid": payment_id}).fetchone()
    return amount_refunded, status


def refunds_total(conn, payment_id: int) -> int:
    """The sum of every refund we know for a payment, whatever its status."""
    return fetch_value(conn, Q.refunds_total, {"p": payment_id})


def lock_refund(conn, account: str, refund_id: str) -> Refund | None:
    return fetch_one(conn, Refund, Q.lock_refund, {"a": account, "r": refund_id})


def insert_refund(conn, account: str, payment: Payment, refund: dict, version: tuple[int, int]) -> Refund | None:
    return fetch_one(conn, Refund, Q.insert_refund, {"a": account, "charge": payment.stripe_charge_id,
                                                     "pid": payment.id, **refund, "v_created": version[0],
                                                     "v_rank": version[1]})


def update_refund(conn, refund_row_id: int, refund: dict, version: tuple[int, int]) -> None:
    conn.execute(Q.update_refund, {**refund, "rid": refund_row_id, "v_created": version[0], "v_rank": version[1]})


def move_refund(conn, refund_row_id: int, payment: Payment) -> None:
    """Attach a refund to the payment of the charge it names."""
    conn.execute(Q.move_refund, {"pid": payment.id, "charge": payment.stripe_charge_id, "rid": refund_row_id})


def link_course(conn, account: str, object_ids: list[str], course_id: str) -> list[Payment]:
    """Give the course to payments of these objects that have none yet; returns those payments."""
    return fetch_all(conn, Payment, Q.link_course, {"a": account, "ids": object_ids, "course": course_id})


def link_billing(conn, account: str, object_ids: list[str], invoice_id: str | None,
                 subscription_id: str | None) -> list[Payment]:
    """Give the invoice and subscription to payments of these objects that lack them; returns those
    payments. A pure invoice placeholder keeps its key: it is never given a second invoice."""
    return fetch_all(conn, Payment, Q.link_billing, {"a": account, "ids": object_ids, "inv": invoice_id,
                                                     "sub": subscription_id})


def link_customer(conn, account: str, stripe_customer_id: str, customer_id: str) -> None:
    """Attach payments recorded before their customer was known."""
    conn.execute(Q.link_customer, {"a": account, "cus": stripe_customer_id, "cid": customer_id})


def find_by_charge(conn, charge_id: str) -> list[Payment]:
    """The payments of a charge id in every account (charge ids are unique in Stripe: one at most)."""
    return fetch_all(conn, Payment, Q.find_by_charge, {"c": charge_id})
