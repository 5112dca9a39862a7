"""The JSON the admin actions answer with: records in the profile's shapes."""
from __future__ import annotations

from domain import enrollments, payments, subscriptions
from domain.times import iso


def enrollment_json(row: enrollments.Enrollment) -> dict:
    return {"enrollment": {"course_id": row.course_id, "access": row.access, "granted_at": iso(row.granted_at),
                           "revoked_at": iso(row.revoked_at)}}


def refund_json(charge_id: str, refund: payments.Refund, currency: str | None, payment: payments.Payment) -> dict:
    return {
        "refund": {"stripe_refund_id": refund.stripe_refund_id, "stripe_charge_id": charge_id, "amount": refund.amount,
                   "currency": currency, "status": refund.status, "reason": refund.reason, "origin": refund.origin},
        "payment": {"stripe_charge_id": charge_id, "amount": payment.amount, "currency": payment.currency,
                    "amount_refunded": payment.amount_refunded, "status": payment.status},
    }


def subscription_json(row: subscriptions.Subscription) -> dict:
    return {"subscription": {
        "stripe_subscription_id": row.stripe_subscription_id, "course_id": row.course_id, "status": row.status,
        "pause_collection": row.pause_collection, "cancel_at_period_end": row.cancel_at_period_end,
        "cancel_at": iso(row.cancel_at), "canceled_at": iso(row.canceled_at), "ended_at": iso(row.ended_at),
        "current_period_end": iso(row.current_period_end)}}
