"""Refunds, kept per refund id: refund.created / .updated / .failed, charge.refund.updated, and the
refunds a charge payload carries. A refund never touches access (rule 1)."""
from __future__ import annotations

from domain import payments
from domain.versions import FETCHED, REFUND_RANK, Order, compare
from workers.context import EventContext
from workers.stripe_objects import embedded_refunds, integer, ref

REFUND_STATUSES = ("pending", "requires_action", "succeeded", "failed", "canceled")


def record_refund(ctx: EventContext) -> None:
    """A refund event: find (or fetch) its charge's payment, then apply the refund's state."""
    refund = ctx.obj
    status = refund_status(refund)
    if ctx.type == "refund.failed":
        status = "failed"  # the event type is authoritative (a hand-edited fixture still says succeeded)
    snapshot_refund(ctx, refund, ctx.version(REFUND_RANK[status]), status=status)


def snapshot_refund(ctx: EventContext, refund: dict, version: tuple[int, int], *,
                    status: str | None = None) -> payments.Payment:
    """Apply a Stripe refund object at this version to its payment; returns the payment."""
    payment = payment_of_refund(ctx, refund)
    if apply_refund(ctx, payment, refund, version, status=status):
        _settle(ctx, payment)
    return payment


def payment_of_refund(ctx: EventContext, refund: dict) -> payments.Payment:
    """The payment of the charge the refund names, fetched when we have never seen that charge (rule 7).

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
    from workers.handlers.purchases import apply_charge

    charge = ctx.fetch("charge", charge_id)
    return apply_charge(ctx, charge, (ctx.created, FETCHED))


def refund_status(refund: dict) -> str:
    status = refund.get("status")
    return status if status in REFUND_STATUSES else "succeeded"


def apply_refund(ctx: EventContext, payment: payments.Payment, refund: dict, version: tuple[int, int],
                 *, status: str | None = None) -> bool:
    """Apply one refund object at this version; True when something changed."""
    refund_id = ref(refund.get("id"))
    if not refund_id:
        return False
    metadata = refund.get("metadata") if isinstance(refund.get("metadata"), dict) else {}
    values = {
        "id": refund_id,
        "amount": integer(refund.get("amount")),
        "currency": refund.get("currency"),
        "status": status or refund_status(refund),
        "reason": refund.get("reason") if isinstance(refund.get("reason"), str) else None,
        "origin": "teachery" if metadata.get("teachery_origin") == "teachery" else "stripe",
    }
    row = payments.lock_refund(ctx.conn, ctx.account, refund_id)
    if row is None:
        row = payments.insert_refund(ctx.conn, ctx.account, payment, values, version)
        if row is not None:
            ctx.log(payment.customer_id, f"refund.{values['status']}",
                    f"Refund {refund_id} of {values['amount']} {(values['currency'] or '').upper()} on payment "
                    f"{payment.stripe_charge_id}: {values['status']}" + (f" ({values['reason']})" if values["reason"] else ""),
                    "refund", refund_id)
            ctx.touched.add(refund_id)
            return True
        row = payments.lock_refund(ctx.conn, ctx.account, refund_id)
    if row.payment_id != payment.id:  # recorded on another payment: it belongs to the charge it names
        payments.move_refund(ctx.conn, row.id, payment)
        _settle_other(ctx, row.payment_id)
        ctx.log(payment.customer_id, "refund.moved", f"Refund {refund_id} moved to payment {payment.stripe_charge_id}",
                "refund", refund_id)
        row.payment_id = payment.id
        if compare(version, row.version) is Order.OLDER:
            return True
    if compare(version, row.version) is Order.OLDER:
        return False
    if (row.amount, row.status, row.reason) == (values["amount"], values["status"], values["reason"]):
        if version != row.version:
            payments.update_refund(ctx.conn, row.id, values, version)
        return False
    payments.update_refund(ctx.conn, row.id, values, version)
    ctx.log(payment.customer_id, f"refund.{values['status']}",
            f"Refund {refund_id} on payment {payment.stripe_charge_id}: {row.status} → {values['status']}",
            "refund", refund_id)
    return True


def reconcile_charge_refunds(ctx: EventContext, payment: payments.Payment, charge: dict,
                             version: tuple[int, int]) -> None:
    """Apply the refunds a charge payload carries; when it says more was refunded than the refunds we
    know add up to (newer API versions omit the list), read the charge's refunds from Stripe."""
    items, complete = embedded_refunds(charge)
    changed = [apply_refund(ctx, payment, item, version) for item in items]
    reported = integer(charge.get("amount_refunded"))
    if not complete and reported > payments.refunds_total(ctx.conn, payment.id):
        changed += [apply_refund(ctx, payment, item, (ctx.created, FETCHED))
                    for item in ctx.list_refunds(payment.stripe_charge_id, adding_up_to=reported)]
    if any(changed):  # record_payment has already derived the totals from unchanged refunds
        _settle(ctx, payment)


def _settle_other(ctx: EventContext, payment_row_id: int | None) -> None:
    if payment_row_id is not None:
        payments.recompute(ctx.conn, payment_row_id)


def _settle(ctx: EventContext, payment: payments.Payment) -> None:
    """Re-derive the payment's refunded amount and status after its refunds changed; log a status change."""
    before = (payment.amount_refunded, payment.status)
    after = payments.recompute(ctx.conn, payment.id)
    if payment.stripe_charge_id:
        ctx.touched.add(payment.stripe_charge_id)
    if after != before:
        ctx.log(payment.customer_id, "payment.status",
                f"Payment {payment.stripe_charge_id}: {before[1]} → {after[1]} ({after[0]} of {payment.amount} "
                f"{(payment.currency or '').upper()} refunded)", "payment", payment.stripe_charge_id or str(payment.id))
    payment.amount_refunded, payment.status = after
