"""The one table mapping a Stripe event type to its handler. Types not here are recorded as `ignored`."""
from __future__ import annotations

from workers.handlers.charges import record_charge, record_refund
from workers.handlers.customers import apply_customer_change, mark_customer_deleted
from workers.handlers.purchases import (
    link_invoice_payment,
    record_checkout_session,
    record_invoice_failure,
    record_invoice_payment,
    record_payment_intent,
)
from workers.handlers.subscriptions import apply_subscription_change

EVENT_HANDLERS = {
    "checkout.session.completed": record_checkout_session,
    "checkout.session.async_payment_succeeded": record_checkout_session,
    "checkout.session.async_payment_failed": record_checkout_session,
    "charge.succeeded": record_charge,
    "charge.failed": record_charge,
    "charge.pending": record_charge,
    "charge.captured": record_charge,
    "charge.updated": record_charge,
    "charge.refunded": record_charge,
    "charge.expired": record_charge,
    "payment_intent.succeeded": record_payment_intent,
    "payment_intent.processing": record_payment_intent,
    "payment_intent.payment_failed": record_payment_intent,
    "invoice.paid": record_invoice_payment,
    "invoice.payment_succeeded": record_invoice_payment,
    "invoice.payment_failed": record_invoice_failure,
    "invoice_payment.paid": link_invoice_payment,
    "charge.refund.updated": record_refund,
    "refund.created": record_refund,
    "refund.updated": record_refund,
    "refund.failed": record_refund,
    "customer.subscription.created": apply_subscription_change,
    "customer.subscription.updated": apply_subscription_change,
    "customer.subscription.deleted": apply_subscription_change,
    "customer.subscription.paused": apply_subscription_change,
    "customer.subscription.resumed": apply_subscription_change,
    "customer.subscription.pending_update_applied": apply_subscription_change,
    "customer.subscription.pending_update_expired": apply_subscription_change,
    "customer.subscription.trial_will_end": apply_subscription_change,
    "customer.created": apply_customer_change,
    "customer.updated": apply_customer_change,
    "customer.deleted": mark_customer_deleted,
}
