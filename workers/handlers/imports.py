"""Applying a charge read from Stripe's API with what its events would have said about it.

An event history tells a charge's payment its payment intent's course (payment_intent.succeeded,
checkout.session.completed) and its invoice and subscription (invoice.paid, invoice.payment_failed,
invoice_payment.paid). A reconciliation that meets a charge we have never recorded (an account that
connected before we ran, say) has only the charge object: it reads the rest from Stripe, through
Change.fetch and Change.list_page, then applies the charge as the event handlers do. A charge we already
hold is applied as it is (its links came with its events).
"""
from __future__ import annotations

from domain import courses, enrollments, payment_links, payments
from domain.payments import PaymentFacts
from workers.context import Change
from workers.handlers.charges import apply_charge
from workers.handlers.payments import learn_billing, learn_course, record_payment
from workers.handlers.purchases import subscription_course_of
from workers.stripe_objects import (
    intent_charge,
    invoice_course,
    invoice_payment_attempts,
    invoice_payment_refs,
    invoice_subscription,
    metadata_course,
    ref,
)

# What a placeholder's payment intent or invoice says of its payment, as our charge_status says it: a
# placeholder stands for a paid purchase; an intent or invoice still open is `pending`, one that can no
# longer be paid (canceled, void, uncollectible) `failed`.
INTENT_STATUS = {"succeeded": "succeeded", "canceled": "failed"}
INVOICE_STATUS = {"paid": "succeeded", "void": "failed", "uncollectible": "failed"}


def import_charge(ctx: Change, charge: dict, version: tuple[int, int]) -> payments.Payment:
    """Apply a charge object from the API: first, for a charge we hold no payment of, learn its course and
    its invoice and subscription from its payment intent, invoice and Checkout Session."""
    charge_id = ref(charge.get("id"))
    if not charge_id or payments.lock_by_charge(ctx.conn, ctx.account, charge_id) is not None:
        return apply_charge(ctx, charge, version)
    _learn_links(ctx, charge)
    payment = apply_charge(ctx, charge, version)
    if payment.customer_id and payment.course_id and payment.charge_status == "succeeded" and payment.created:
        # Stripe lists newest first: an older purchase of a course met later is the one access dates from
        enrollments.date_back_grant(ctx.conn, payment.customer_id, payment.course_id, payment.created)
    return payment


def _learn_links(ctx: Change, charge: dict) -> None:
    charge_id, intent_id, invoice_id = (ref(charge.get(k)) for k in ("id", "payment_intent", "invoice"))
    ids = [charge_id, intent_id, invoice_id]
    course = metadata_course(charge) or courses.recall(ctx.conn, ctx.account, ids)
    known = payment_links.recall(ctx.conn, ctx.account, ids)
    invoice_id = invoice_id or known.invoice_id
    if intent_id and not (course and invoice_id):
        intent = ctx.fetch("payment_intent", intent_id)
        course = course or metadata_course(intent)
        invoice_id = invoice_id or ref(intent.get("invoice"))
        if not invoice_id and "invoice" not in charge:
            # basil (2025-03-31): neither the charge nor the intent names its invoice; the invoice's
            # payments (invoice_payment objects) name the intent
            invoice_id = _invoice_paid_by(ctx, intent_id)
        if not course and not invoice_id:  # a one-off Checkout purchase may name its course on the session
            sessions = ctx.list_page("/v1/checkout/sessions", payment_intent=intent_id)
            course = next((c for c in map(metadata_course, sessions) if c), None)
    learn_course(ctx, ids + [invoice_id], course)
    if invoice_id and not (known.subscription_id and course):
        invoice = ctx.fetch("invoice", invoice_id)
        sub_id = invoice_subscription(invoice)
        course = course or invoice_course(invoice) or (subscription_course_of(ctx, sub_id) if sub_id else None)
        learn_course(ctx, [invoice_id, sub_id, charge_id, intent_id], course)
        learn_billing(ctx, [charge_id, intent_id], invoice_id, sub_id)


def _invoice_paid_by(ctx: Change, intent_id: str) -> str | None:
    items = ctx.list_page("/v1/invoice_payments", payment={"type": "payment_intent", "payment_intent": intent_id})
    for item in items:
        # a Stripe stand-in may ignore the filter: keep only this intent's
        if intent_id in [pi for _, pi in invoice_payment_attempts([item])] and ref(item.get("invoice")):
            return ref(item.get("invoice"))
    return None


# --- placeholders ------------------------------------------------------------------------------

def placeholder_state(obj: dict) -> dict:
    """What a payment intent or invoice says of the payment we hold under its id: the charge that paid it
    (when it names one), the status and the amount."""
    if obj.get("object") == "invoice":
        status = INVOICE_STATUS.get(obj.get("status"), "pending")
        charge_id, _ = invoice_payment_refs(obj)
        amount = obj.get("amount_paid") if status == "succeeded" else obj.get("amount_due")
    else:
        status = INTENT_STATUS.get(obj.get("status"), "pending")
        charge_id = intent_charge(obj)
        amount = obj.get("amount_received") if status == "succeeded" else obj.get("amount")
    return {"stripe_charge_id": charge_id if status == "succeeded" else None, "status": status,
            "amount": amount if isinstance(amount, int) and not isinstance(amount, bool) else 0}


def apply_placeholder(ctx: Change, obj: dict, version: tuple[int, int]) -> None:
    """Apply a payment intent or invoice to the payment we hold under its id: the charge that paid it takes
    the placeholder over (one payment, never two); else the placeholder takes its status and amount (a
    status other than succeeded grants nothing, and revokes nothing: docs/rules.md, rules 3 and 6)."""
    object_id = ref(obj.get("id"))
    if not object_id:
        raise ValueError("the payment intent or invoice has no id")
    state = placeholder_state(obj)
    if state["stripe_charge_id"]:
        import_charge(ctx, ctx.fetch("charge", state["stripe_charge_id"]), version)
        return
    invoice = obj.get("object") == "invoice"
    record_payment(ctx, PaymentFacts(
        payment_intent_id=None if invoice else object_id, invoice_id=object_id if invoice else None,
        amount=state["amount"], currency=obj.get("currency"), charge_status=state["status"],
    ), version)
