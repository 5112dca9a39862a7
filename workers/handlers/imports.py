"""Applying a charge read from Stripe's API with what its events would have said about it.

An event history tells a charge's payment its payment intent's course (payment_intent.succeeded,
checkout.session.completed) and its invoice and subscription (invoice.paid, invoice.payment_failed,
invoice_payment.paid). A reconciliation that meets a charge we have never recorded (an account that
connected before we ran, say) has only the charge object: it reads the rest from Stripe, through
Change.fetch and Change.list_page, then applies the charge as the event handlers do. A charge we already
hold is applied as it is (its links came with its events).
"""
from __future__ import annotations

from datetime import datetime

from domain import courses, customers, enrollments, payment_links, payments, subscriptions
from domain.payments import PaymentFacts
from domain.versions import FETCHED
from workers.context import Change
from workers.handlers.charges import apply_charge
from workers.handlers.customers import ensure_customer, snapshot_customer
from workers.handlers.payments import grant, learn_billing, learn_course, record_payment
from workers.handlers.purchases import course_of_invoice, subscription_course_of
from workers.handlers.subscriptions import snapshot_subscription
from workers.stripe_objects import (
    contact,
    integer,
    intent_charge,
    invoice_course,
    invoice_payment_attempts,
    invoice_payment_refs,
    invoice_subscription,
    metadata_course,
    ref,
    subscription_course,
    when,
)

# What a placeholder's payment intent or invoice says of its payment, as our charge_status says it: a
# placeholder stands for a paid purchase; an intent or invoice still open is `pending`, one that can no
# longer be paid (canceled, void, uncollectible) `failed`.
INTENT_STATUS = {"succeeded": "succeeded", "canceled": "failed"}
INVOICE_STATUS = {"paid": "succeeded", "void": "failed", "uncollectible": "failed"}


def import_charge(ctx: Change, charge: dict, version: tuple[int, int]) -> payments.Payment:
    """Apply a charge object from the API: first, for a charge we hold no payment of, learn its course and
    its invoice and subscription from its payment intent, invoice and Checkout Session, and its customer's
    name and email from them when Stripe has deleted the customer."""
    charge_id = ref(charge.get("id"))
    if not charge_id or payments.lock_by_charge(ctx.conn, ctx.account, charge_id) is not None:
        return apply_charge(ctx, charge, version)
    name, email = _learn_links(ctx, charge)
    cus_id = ref(charge.get("customer"))
    if cus_id and customers.lock(ctx.conn, ctx.account, cus_id) is None:  # Stripe no longer lists it: deleted
        snapshot_customer(ctx, ctx.fetch("customer", cus_id), (ctx.stamp, FETCHED))
        if name or email:  # a deletion stub says nothing of them: what the purchase's payloads said fills in
            ensure_customer(ctx, cus_id, name=name, email=email)
    payment = apply_charge(ctx, charge, version)
    if payment.charge_status == "succeeded":
        date_back(ctx, payment.customer_id, payment.course_id, payment.created)
    return payment


def import_subscription(ctx: Change, sub: dict, version: tuple[int, int]) -> None:
    """Apply a subscription object from the API; for one we never held, also the access its free invoices
    (a trial's) gave, as invoice.paid of an invoice of 0 does."""
    sub_id = ref(sub.get("id"))
    held = bool(sub_id) and subscriptions.lock(ctx.conn, ctx.account, sub_id) is not None
    snapshot_subscription(ctx, sub, version)
    cus_id = ref(sub.get("customer"))
    course = subscription_course(sub) or courses.recall(ctx.conn, ctx.account, [sub_id])
    if held or not cus_id or not course:
        return
    customer = customers.lock(ctx.conn, ctx.account, cus_id)
    for invoice in ctx.list_page("/v1/invoices", subscription=sub_id, status="paid"):
        # a Stripe stand-in may ignore the filters: keep only this subscription's paid invoices of 0
        if invoice_subscription(invoice) == sub_id and invoice.get("status") == "paid" \
                and integer(invoice.get("amount_paid")) == 0 and customer is not None:
            at = when((invoice.get("status_transitions") or {}).get("paid_at")) or when(invoice.get("created"))
            grant(ctx, customer.id, invoice_course(invoice) or course, at)
            date_back(ctx, customer.id, invoice_course(invoice) or course, at)


def date_back(ctx: Change, customer_id: str | None, course_id: str | None, at: datetime | None) -> None:
    """Stripe lists newest first: an older purchase of a course met later is the one access dates from."""
    if customer_id and course_id and at:
        enrollments.date_back_grant(ctx.conn, customer_id, course_id, at)


def _learn_links(ctx: Change, charge: dict) -> tuple[str | None, str | None]:
    """Learn what the charge's other objects say of it; returns the customer's (name, email) they state."""
    charge_id, intent_id, invoice_id = (ref(charge.get(k)) for k in ("id", "payment_intent", "invoice"))
    ids = [charge_id, intent_id, invoice_id]
    course = metadata_course(charge) or courses.recall(ctx.conn, ctx.account, ids)
    known = payment_links.recall(ctx.conn, ctx.account, ids)
    invoice_id = invoice_id or known.invoice_id
    name = email = None
    if intent_id and not (course and invoice_id):
        intent = ctx.fetch("payment_intent", intent_id)
        course = course or metadata_course(intent)
        invoice_id = invoice_id or ref(intent.get("invoice"))
        if not invoice_id and "invoice" not in charge:
            # basil (2025-03-31): neither the charge nor the intent names its invoice; the invoice's
            # payments (invoice_payment objects) name the intent
            invoice_id = _invoice_paid_by(ctx, intent_id)
        if not invoice_id:  # a one-off Checkout purchase: its session may name the course, and the buyer
            sessions = _checkout_sessions(ctx, "payment_intent", intent_id)
            course = course or next((c for c in map(metadata_course, sessions) if c), None)
            name, email = contact(sessions[0]) if sessions else (None, None)
    learn_course(ctx, ids + [invoice_id], course)
    if invoice_id and not (known.subscription_id and course):
        invoice = ctx.fetch("invoice", invoice_id)
        sub_id = invoice_subscription(invoice)
        course = course or course_of_invoice(ctx, invoice) or (_subscription_course(ctx, sub_id) if sub_id else None)
        learn_course(ctx, [invoice_id, sub_id, charge_id, intent_id], course)
        learn_billing(ctx, [charge_id, intent_id], invoice_id, sub_id)
        name, email = invoice.get("customer_name"), invoice.get("customer_email")
    return name, email


def _subscription_course(ctx: Change, sub_id: str) -> str | None:
    """A subscription's course: its own (or its price's), else the one its Checkout Session named, as
    checkout.session.completed would have told it."""
    course = subscription_course_of(ctx, sub_id)
    if course:
        return course
    return next((c for c in map(metadata_course, _checkout_sessions(ctx, "subscription", sub_id)) if c), None)


def _checkout_sessions(ctx: Change, field: str, object_id: str) -> list[dict]:
    """The Checkout Sessions whose `field` (payment_intent, subscription) is this object."""
    return [s for s in ctx.list_page("/v1/checkout/sessions", **{field: object_id})
            if ref(s.get(field)) == object_id]  # a Stripe stand-in may ignore the filter


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
