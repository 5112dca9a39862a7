"""A charge's payment and its refunds: charge.* and refund.* events, charge.refund.updated.

A charge applies its refunds, and a refund whose charge we have never seen fetches that charge
(docs/rules.md, rule 7), so both live here, above refunds.py (one refund row at a time). A refund
never touches access (rule 1).
"""
from __future__ import annotations

from domain import payments
from domain.payments import PaymentFacts
from domain.versions import CHARGE_RANK, FETCHED, REFUND_RANK
from workers.context import Change, EventContext
from workers.handlers.customers import ensure_customer
from workers.handlers.payments import learn_billing, learn_course, record_payment
from workers.handlers.refunds import apply_refund, reconcile_charge_refunds, refund_status, settle_refunds
from workers.stripe_objects import charge_status, integer, metadata_course, ref, when


def record_charge(ctx: EventContext) -> None:
    """charge.succeeded / .failed / .pending / .captured / .updated / .refunded / .expired."""
    apply_charge(ctx, ctx.obj, ctx.version(CHARGE_RANK.get(charge_status(ctx.obj), 1)))


def apply_charge(ctx: Change, charge: dict, version: tuple[int, int]) -> payments.Payment:
    """Apply a charge object at this version: its payment, customer, course and refunds."""
    charge_id = ref(charge.get("id"))
    if not charge_id:
        raise ValueError("the charge has no id")
    cus_id = ref(charge.get("customer"))
    customer = ensure_customer(ctx, cus_id) if cus_id else None
    intent_id, invoice_id = ref(charge.get("payment_intent")), ref(charge.get("invoice"))
    course = metadata_course(charge)
    if course:
        learn_course(ctx, [charge_id, intent_id, invoice_id], course)
    learn_billing(ctx, [charge_id, intent_id], invoice_id, None)
    payment = record_payment(ctx, PaymentFacts(
        charge_id=charge_id, payment_intent_id=intent_id, invoice_id=invoice_id,
        stripe_customer_id=cus_id, customer_id=customer.id if customer else None, course_id=course,
        amount=integer(charge.get("amount"), None), currency=charge.get("currency"),
        charge_status=charge_status(charge), created=when(charge.get("created")),
    ), version)
    reconcile_charge_refunds(ctx, payment, charge, version)
    return payment


def record_refund(ctx: EventContext) -> None:
    """A refund event: find (or fetch) its charge's payment, then apply the refund's state."""
    refund = ctx.obj
    status = refund_status(refund)
    if ctx.type == "refund.failed":
        status = "failed"  # the event type is authoritative (a hand-edited fixture still says succeeded)
    snapshot_refund(ctx, refund, ctx.version(REFUND_RANK[status]), status=status)


def snapshot_refund(ctx: Change, refund: dict, version: tuple[int, int], *,
                    status: str | None = None) -> payments.Payment:
    """Apply a Stripe refund object at this version to its payment; returns the payment."""
    payment = payment_of_refund(ctx, refund)
    if apply_refund(ctx, payment, refund, version, status=status):
        settle_refunds(ctx, payment)
    return payment


def payment_of_refund(ctx: Change, refund: dict) -> payments.Payment:
    """The payment of the charge the refund names (rule 10), fetched when we have never seen that charge (rule 7).

    Never another charge of the same payment intent: a retried payment intent has a failed charge and
    the one that succeeded, and only the payload's `charge` says which one was refunded."""
    charge_id = ref(refund.get("charge"))
    if charge_id:
        payment = payments.lock_by_charge(ctx.conn, ctx.account, charge_id)
    else:  # a refund that names only its payment intent: the intent's succeeded charge
        intent_id = ref(refund.get("payment_intent"))
        payment = payments.lock_for(ctx.conn, ctx.account, payments.PaymentFacts(
            payment_intent_id=intent_id, charge_status="succeeded")) if intent_id else None
        if payment is None:
            raise ValueError(f"refund {refund.get('id')} names no charge")
    if payment is not None:
        return payment
    return apply_charge(ctx, ctx.fetch("charge", charge_id), (ctx.stamp, FETCHED))
