"""Purchases and their attempts: checkout.session.*, payment_intent.*, invoice.paid / .payment_failed,
invoice_payment.paid (charge.* is in charges.py).

A purchase creates (or completes) the customer, the payment and the enrollment (docs/rules.md, rule 7).
The course is metadata.course_id on the session, subscription, payment intent or charge. A failed or pending attempt
is recorded with the invoice, subscription and course Stripe's objects give it, and grants nothing.
"""
from __future__ import annotations

from domain import courses, subscriptions
from domain.payments import PaymentFacts
from domain.versions import FETCHED
from workers.context import Change, EventContext
from workers.handlers.customers import ensure_customer
from workers.handlers.payments import grant, learn_billing, learn_course, record_payment
from workers.handlers.subscriptions import snapshot_subscription
from workers.stripe_objects import (
    contact,
    integer,
    intent_attempt_charge,
    intent_charge,
    invoice_attempts,
    invoice_course,
    invoice_payment_attempts,
    invoice_payment_refs,
    invoice_prices,
    invoice_subscription,
    metadata_course,
    ref,
    subscription_course,
    when,
)


def record_checkout_session(ctx: EventContext) -> None:
    """checkout.session.completed: the customer, the course, and the payment when it is paid."""
    session = ctx.obj
    cus_id = ref(session.get("customer"))
    intent_id, sub_id, invoice_id = (ref(session.get(k)) for k in ("payment_intent", "subscription", "invoice"))
    course = metadata_course(session)
    if not course and invoice_id:
        course = invoice_course_of(ctx, invoice_id)
    if not course and sub_id:
        course = subscription_course_of(ctx, sub_id)
    learn_course(ctx, [session.get("id"), intent_id, sub_id, invoice_id], course)
    learn_billing(ctx, [intent_id], invoice_id, sub_id)
    customer = None
    if cus_id:
        name, email = contact(session)
        customer = ensure_customer(ctx, cus_id, name=name, email=email)
    paid = session.get("payment_status") in ("paid", "no_payment_required") or session.get("payment_status") is None
    amount = integer(session.get("amount_total"), None) if session.get("amount_total") is not None else None
    if paid and (intent_id or invoice_id) and (amount or 0) > 0:
        record_payment(ctx, PaymentFacts(
            payment_intent_id=intent_id, invoice_id=invoice_id, subscription_id=sub_id,
            stripe_customer_id=cus_id, customer_id=customer.id if customer else None, course_id=course,
            amount=amount, currency=session.get("currency"), charge_status="succeeded",
            created=when(session.get("created")),
        ), None)
    elif paid and customer and course:
        grant(ctx, customer.id, course, when(ctx.stamp))


def record_payment_intent(ctx: EventContext) -> None:
    """payment_intent.succeeded / .processing / .payment_failed: the course (its metadata), and the
    payment of the charge it names: succeeded, pending (a delayed method such as an ACH debit still
    processing) or failed. An intent that names no charge (a voucher that expired unpaid) records none."""
    intent = ctx.obj
    intent_id = ref(intent.get("id"))
    cus_id = ref(intent.get("customer"))
    succeeded = ctx.type == "payment_intent.succeeded" and intent.get("status") in (None, "succeeded")
    charge_id = intent_charge(intent) if succeeded else intent_attempt_charge(intent)
    invoice_id = ref(intent.get("invoice"))
    course = metadata_course(intent)
    learn_course(ctx, [intent_id, charge_id, invoice_id], course)
    learn_billing(ctx, [intent_id, charge_id], invoice_id, None)
    if not (succeeded or charge_id):
        return
    customer = ensure_customer(ctx, cus_id) if cus_id else None
    amount = intent.get("amount_received") or intent.get("amount")
    record_payment(ctx, PaymentFacts(
        charge_id=charge_id, payment_intent_id=intent_id, invoice_id=invoice_id,
        stripe_customer_id=cus_id, customer_id=customer.id if customer else None, course_id=course,
        amount=integer(amount, None), currency=intent.get("currency"),
        charge_status="succeeded" if succeeded else ATTEMPT_STATUS.get(ctx.type),
        created=when(intent.get("created")),
    ), None)


ATTEMPT_STATUS = {"payment_intent.processing": "pending", "payment_intent.payment_failed": "failed"}


def record_invoice_payment(ctx: EventContext) -> None:
    """invoice.paid / invoice.payment_succeeded: the subscription's payment and its course."""
    invoice = ctx.obj
    invoice_id = ref(invoice.get("id"))
    cus_id = ref(invoice.get("customer"))
    sub_id = invoice_subscription(invoice)
    charge_id, intent_id = invoice_payment_refs(invoice)
    amount = integer(invoice.get("amount_paid"), 0)
    if not (charge_id or intent_id) and invoice_id and amount > 0 and invoice_attempts(invoice) is None:
        # basil, `payments` left out: ask which payment intent paid it; when Stripe cannot say, the
        # payment waits under the invoice for invoice_payment.paid or its charge
        paid = [p for p in ctx.list_invoice_payments(invoice_id, wait=False) if p.get("status") == "paid"]
        charge_id, intent_id = (invoice_payment_attempts(paid) or [(None, None)])[0]
    course = course_of_invoice(ctx, invoice)
    if not course and sub_id:
        course = subscription_course_of(ctx, sub_id)
    learn_course(ctx, [invoice_id, sub_id, charge_id, intent_id], course)
    learn_billing(ctx, [charge_id, intent_id], invoice_id, sub_id)
    customer = None
    if cus_id:
        customer = ensure_customer(ctx, cus_id, name=invoice.get("customer_name"), email=invoice.get("customer_email"))
    if amount > 0:
        record_payment(ctx, PaymentFacts(
            charge_id=charge_id, payment_intent_id=intent_id, invoice_id=invoice_id, subscription_id=sub_id,
            stripe_customer_id=cus_id, customer_id=customer.id if customer else None, course_id=course,
            amount=amount, currency=invoice.get("currency"), charge_status="succeeded",
            created=when((invoice.get("status_transitions") or {}).get("paid_at")) or when(invoice.get("created")),
        ), None)
    elif customer and course:  # a free (e.g. trial) invoice still starts the course
        grant(ctx, customer.id, course, when(ctx.stamp))


def record_invoice_failure(ctx: EventContext) -> None:
    """invoice.payment_failed: the attempt's charge (charge.failed names no subscription, and since basil
    no invoice) belongs to this invoice, its subscription and its course. The payment itself comes from
    the charge's own events; this gives it what they do not say."""
    invoice = ctx.obj
    invoice_id = ref(invoice.get("id"))
    sub_id = invoice_subscription(invoice)
    course = course_of_invoice(ctx, invoice)
    if not course and sub_id:
        course = subscription_course_of(ctx, sub_id)
    attempts = invoice_attempts(invoice)
    if attempts is None:  # basil without `payments`: Stripe's list of the invoice's payments says it
        attempts = invoice_payment_attempts(ctx.list_invoice_payments(invoice_id))
    ids = [i for pair in attempts for i in pair if i]
    learn_course(ctx, [invoice_id, sub_id] + ids, course)
    learn_billing(ctx, ids, invoice_id, sub_id)
    cus_id = ref(invoice.get("customer"))
    if cus_id:
        ensure_customer(ctx, cus_id, name=invoice.get("customer_name"), email=invoice.get("customer_email"))


def link_invoice_payment(ctx: EventContext) -> None:
    """invoice_payment.paid (basil): which payment intent or charge paid an invoice. Since basil
    neither the charge nor the invoice names the other, and an invoice's `payments` is not always in
    its payload: this event is what joins the invoice's payment to its charge."""
    item = ctx.obj
    if item.get("status") not in (None, "paid"):
        return
    paid_by = item.get("payment") if isinstance(item.get("payment"), dict) else {}
    invoice_id = ref(item.get("invoice"))
    intent_id, charge_id = ref(paid_by.get("payment_intent")), ref(paid_by.get("charge"))
    if not invoice_id or not (intent_id or charge_id):
        return
    learn_billing(ctx, [intent_id, charge_id], invoice_id, None)
    course = courses.recall(ctx.conn, ctx.account, [invoice_id, intent_id, charge_id])
    learn_course(ctx, [invoice_id, intent_id, charge_id], course)
    record_payment(ctx, PaymentFacts(
        charge_id=charge_id, payment_intent_id=intent_id, invoice_id=invoice_id, course_id=course,
        amount=integer(item.get("amount_paid"), None), currency=item.get("currency"), charge_status="succeeded",
        created=when((item.get("status_transitions") or {}).get("paid_at")) or when(item.get("created")),
    ), None)


def invoice_course_of(ctx: Change, invoice_id: str) -> str | None:
    """The course the session's invoice pays for, as the invoice states it: the subscription's course
    when the invoice was made, which is not its course now if it has since moved to another one."""
    known = courses.recall(ctx.conn, ctx.account, [invoice_id])
    if known:
        return known
    fetched = ctx.peek("invoice", invoice_id)
    return course_of_invoice(ctx, fetched) if fetched is not None else None


def course_of_invoice(ctx: Change, invoice: dict) -> str | None:
    """The course an invoice states, else the course of the price it bills (since basil a line names
    only its price's id): remembered, else read from Stripe when it can be asked."""
    course = invoice_course(invoice)
    for price_id in invoice_prices(invoice) if not course else []:
        course = courses.recall(ctx.conn, ctx.account, [price_id])
        if not course:
            price = ctx.peek("price", price_id)
            course = metadata_course(price) if price is not None else None
            if course:
                courses.remember(ctx.conn, ctx.account, [price_id], course)
        if course:
            break
    return course


def subscription_course_of(ctx: Change, sub_id: str) -> str | None:
    """The course of a subscription: from our records, else fetched from Stripe (docs/rules.md, rule 7)."""
    known = courses.recall(ctx.conn, ctx.account, [sub_id])
    if known:
        return known
    if subscriptions.lock(ctx.conn, ctx.account, sub_id) is not None:
        return None  # we know the subscription and it names no course
    fetched = ctx.fetch("subscription", sub_id)
    snapshot_subscription(ctx, fetched, (ctx.stamp, FETCHED))
    return subscription_course(fetched)
