"""Recording a payment from whatever payload names it, and the enrollment a purchase gives."""
from __future__ import annotations

from domain import courses, enrollments, payment_links, payments, subscriptions
from domain.payments import PaymentFacts
from domain.versions import Order, compare
from workers.context import Change
from workers.stripe_objects import when

SNAPSHOT_FIELDS = ("amount", "currency", "charge_status", "created")  # of a charge snapshot; same names in both
LINK_FIELDS = {  # the payment's links (filled when blank), each with the PaymentFacts field that states it
    "stripe_charge_id": "charge_id", "stripe_payment_intent_id": "payment_intent_id", "stripe_invoice_id": "invoice_id",
    "stripe_subscription_id": "subscription_id", "stripe_customer_id": "stripe_customer_id",
    "customer_id": "customer_id", "course_id": "course_id",
}


def record_payment(ctx: Change, facts: PaymentFacts, version: tuple[int, int] | None) -> payments.Payment:
    """Create or update the payment these facts describe.

    `version` is the version of a charge snapshot (amount, currency, status, created); None for
    payloads that only link things (a session, an invoice): those fill blanks and never override.
    """
    if not (facts.invoice_id and facts.subscription_id):
        known = payment_links.recall(ctx.conn, ctx.account, [facts.charge_id, facts.payment_intent_id,
                                                             facts.invoice_id])
        facts.invoice_id = facts.invoice_id or known.invoice_id
        facts.subscription_id = facts.subscription_id or known.subscription_id
    ids = [facts.charge_id, facts.payment_intent_id, facts.invoice_id, facts.subscription_id]
    if not facts.course_id:
        facts.course_id = courses.recall(ctx.conn, ctx.account, ids)
    row = payments.lock_for(ctx.conn, ctx.account, facts)
    if row is None:
        row = payments.insert(ctx.conn, ctx.account, facts, version or (0, 0))
        if row is None:  # a concurrent transaction inserted it; take that row
            row = payments.lock_for(ctx.conn, ctx.account, facts)
        else:
            ctx.log(row.customer_id, "payment.recorded",
                    f"Payment {_label(row)} of {_money(row.amount, row.currency)} recorded ({row.charge_status})"
                    + (f" for course {row.course_id}" if row.course_id else ""), "payment", _label(row))
            _after_payment_change(ctx, row)
            return row
    changes = {col: getattr(facts, fact) for col, fact in LINK_FIELDS.items()
               if getattr(row, col) is None and getattr(facts, fact) is not None}
    snapshot = {k: getattr(facts, k) for k in SNAPSHOT_FIELDS}
    stored = {k: getattr(row, k) for k in SNAPSHOT_FIELDS}
    new_version = None
    if version is not None and compare(version, row.version) is not Order.OLDER:
        changes.update({k: v for k, v in snapshot.items() if v is not None and v != stored[k]})
        new_version = version
    elif row.version == (0, 0):  # a placeholder: fill what it lacks
        changes.update({k: v for k, v in snapshot.items() if v is not None and stored[k] in (None, 0)})
    if not changes and new_version in (None, row.version):
        return row
    payments.update(ctx.conn, row.id, changes, new_version)
    for key, value in changes.items():
        setattr(row, key, value)
    described = _describe(changes, stored)
    if described:
        ctx.log(row.customer_id, "payment.updated", f"Payment {_label(row)}: {described}", "payment", _label(row))
    _after_payment_change(ctx, row)
    return row


def _after_payment_change(ctx: Change, row: payments.Payment) -> None:
    merged = payments.absorb_placeholders(ctx.conn, ctx.account, row)
    if merged:
        fill = {col: getattr(m, col) for m in merged for col in LINK_FIELDS
                if getattr(row, col) is None and getattr(m, col) is not None}
        if fill:
            payments.update(ctx.conn, row.id, fill)
            for key, value in fill.items():
                setattr(row, key, value)
    row.amount_refunded, row.status = payments.recompute(ctx.conn, row.id)
    for object_id in (row.stripe_charge_id, row.stripe_payment_intent_id, row.stripe_invoice_id):
        if object_id:
            ctx.touched.add(object_id)
    grant_for(ctx, row)


def grant_for(ctx: Change, row: payments.Payment) -> None:
    """A succeeded payment for a course gives its customer the enrollment (docs/rules.md, rule 6)."""
    if row.customer_id and row.course_id and row.charge_status == "succeeded":
        grant(ctx, row.customer_id, row.course_id, when(ctx.stamp) or row.created)


def grant(ctx: Change, customer_id: str, course_id: str, at) -> None:
    if enrollments.grant_for_purchase(ctx.conn, ctx.account, customer_id, course_id, at):
        ctx.log(customer_id, "enrollment.granted", f"Access to course {course_id} granted by the purchase",
                "enrollment", course_id)


def learn_course(ctx: Change, object_ids: list[str], course_id: str | None) -> None:
    """A payload says these objects pay for a course: remember it, and give it to records that lack it."""
    ids = [i for i in object_ids if i]
    if not course_id or not ids:
        return
    courses.remember(ctx.conn, ctx.account, ids, course_id)
    subscriptions.link_course(ctx.conn, ctx.account, [i for i in ids if i.startswith("sub_")], course_id)
    for row in payments.link_course(ctx.conn, ctx.account, ids, course_id):
        ctx.log(row.customer_id, "payment.updated", f"Payment {_label(row)}: course {course_id}", "payment",
                _label(row))
        grant_for(ctx, row)


def learn_billing(ctx: Change, object_ids: list[str | None], invoice_id: str | None,
                  subscription_id: str | None) -> None:
    """A payload says these charges / payment intents belong to this invoice and subscription: remember
    it (for payments not recorded yet) and give it to the payments that lack it, with the course the
    invoice or subscription is known to pay for."""
    ids = [i for i in object_ids if i]
    if not ids or not (invoice_id or subscription_id):
        return
    payment_links.remember(ctx.conn, ctx.account, ids, invoice_id, subscription_id)
    known = payment_links.recall(ctx.conn, ctx.account, ids)
    invoice_id, subscription_id = invoice_id or known.invoice_id, subscription_id or known.subscription_id
    for row in payments.link_billing(ctx.conn, ctx.account, ids + [i for i in (invoice_id,) if i], invoice_id,
                                     subscription_id):
        ctx.log(row.customer_id, "payment.updated", f"Payment {_label(row)}: invoice {row.stripe_invoice_id}"
                + (f", subscription {row.stripe_subscription_id}" if row.stripe_subscription_id else ""),
                "payment", _label(row))
        _after_payment_change(ctx, row)  # a placeholder for that invoice is this payment
    learn_course(ctx, ids + [invoice_id, subscription_id],
                 courses.recall(ctx.conn, ctx.account, ids + [invoice_id, subscription_id]))


def _label(row: payments.Payment) -> str:
    return row.stripe_charge_id or row.stripe_payment_intent_id or row.stripe_invoice_id or str(row.id)


def _money(amount: int | None, currency: str | None) -> str:
    return f"{amount or 0} {(currency or '').upper()}".strip()


def _describe(changes: dict, before: dict) -> str:
    parts = []
    for key, value in changes.items():
        if key in ("customer_id",):
            continue
        if key in before and before[key] not in (None, 0):
            parts.append(f"{key} {before[key]} → {value}")
        else:
            parts.append(f"{key} {value}")
    return ", ".join(parts)
