"""Refund rows, one per refund id: applying one refund object to its payment, the refunds a charge
payload carries, and the payment's refunded total derived from them."""
from __future__ import annotations

from domain import payments
from domain.versions import FETCHED, Order, compare
from workers.context import Change
from workers.stripe_objects import embedded_refunds, integer, ref

REFUND_STATUSES = ("pending", "requires_action", "succeeded", "failed", "canceled")


def refund_status(refund: dict) -> str:
    status = refund.get("status")
    return status if status in REFUND_STATUSES else "succeeded"


def apply_refund(ctx: Change, payment: payments.Payment, refund: dict, version: tuple[int, int],
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
                    f"{payment.stripe_charge_id}: {values['status']}"
                    + (f" ({values['reason']})" if values["reason"] else ""),
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


def reconcile_charge_refunds(ctx: Change, payment: payments.Payment, charge: dict,
                             version: tuple[int, int]) -> None:
    """Apply the refunds a charge payload carries; when it says more was refunded than the refunds we
    know add up to (newer API versions omit the list), read the charge's refunds from Stripe."""
    items, complete = embedded_refunds(charge)
    changed = [apply_refund(ctx, payment, item, version) for item in items]
    reported = integer(charge.get("amount_refunded"))
    if not complete and reported > payments.refunds_total(ctx.conn, payment.id):
        changed += [apply_refund(ctx, payment, item, (ctx.stamp, FETCHED))
                    for item in ctx.list_refunds(payment.stripe_charge_id, adding_up_to=reported)]
    if any(changed):  # record_payment has already derived the totals from unchanged refunds
        settle_refunds(ctx, payment)


def _settle_other(ctx: Change, payment_row_id: int | None) -> None:
    if payment_row_id is not None:
        payments.recompute(ctx.conn, payment_row_id)


def settle_refunds(ctx: Change, payment: payments.Payment) -> None:
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
