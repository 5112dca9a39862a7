"""Admin actions on a payment: a refund, made in Stripe."""
from __future__ import annotations

from domain import payments
from domain.versions import FETCHED
from workers.actions.answers import refund_json
from workers.actions.idempotency import Answer, StripeCall, once, perform
from workers.actions.lookups import payment_of
from workers.commands import CommandRefused, RefundPayment
from workers.handlers.charges import snapshot_refund
from workers.handlers.refunds import REFUND_STATUSES, refund_status


@once
def refund_payment(services, cmd: RefundPayment) -> Answer:
    """Refund a charge in Stripe, whole or part (what is left unless `amount` says); the refund is
    recorded pending at once. Access stays (docs/rules.md, rule 1)."""
    charge_id = cmd.target
    payment = payment_of(services.pool, charge_id, cmd.scope)
    if payment.charge_status != "succeeded":
        raise CommandRefused(f"payment {charge_id} is {payment.charge_status}: there is nothing to refund", 409)
    remaining = payment.amount - payment.amount_refunded
    if remaining <= 0:
        raise CommandRefused(f"payment {charge_id} is already fully refunded")
    amount = cmd.asked.amount or remaining
    if amount > remaining:
        raise CommandRefused(f"amount must be at most {remaining} (the payment's {payment.amount} less "
                             f"{payment.amount_refunded} already refunded)")
    reason = {"reason": cmd.asked.reason} if cmd.asked.reason else {}

    def apply(change, refund):
        refund_id = refund.get("id")
        if refund_status(refund) not in REFUND_STATUSES or not isinstance(refund_id, str):
            raise ValueError(f"Stripe answered the refund with something unexpected: {refund!r:.200}")
        # Stripe often answers a card refund `succeeded` at once; a refund we start stays pending until
        # Stripe's refund event confirms it. Stripe's answer is the refund's first state, so it gets the
        # lowest version: every event about the refund is newer.
        status = "pending" if refund_status(refund) == "succeeded" else None
        paid = snapshot_refund(change, refund, (0, FETCHED), status=status)
        row = payments.lock_refund(change.conn, change.account, refund_id)
        return 202, refund_json(charge_id, row, refund.get("currency"), paid)

    call = StripeCall("post", "/v1/refunds", {"charge": charge_id, "metadata": {"teachery_origin": "teachery"},
                                             "amount": amount, **reason})
    return perform(services, cmd, payment.account, apply, call)
