"""Stripe objects and Event envelopes as a test-mode account sends them, for `teachery-sync trigger`.

Field for field modelled on the real payloads in tests/fixtures/stripe (supabase
stripe-sync-engine's events, Stripe's own openapi fixtures3.json), at API version 2024-06-20 by
default. `for_api_version` reshapes an object for older and newer versions:

- before 2022-11-15 a charge carries its `refunds` list and a payment intent its `charges` list
  (since then: no list on the charge, `latest_charge` on the payment intent);
- 2025-03-31.basil dropped `charge.invoice` and `payment_intent.invoice`, moved the subscription's
  `current_period_start/end` onto its items, and replaced `invoice.subscription` / `.charge` /
  `.payment_intent` with `invoice.parent.subscription_details` and `invoice.payments`.

Every builder returns a plain dict; ids are random Stripe-looking ids.
"""
from __future__ import annotations

import copy
import secrets
import string
import time
import uuid

DEFAULT_API_VERSION = "2024-06-20"
OLD_API_VERSION = "2020-03-02"
BASIL = "2025-03-31.basil"
API_VERSIONS = (OLD_API_VERSION, DEFAULT_API_VERSION, BASIL)
LISTS_DROPPED = "2022-11-15"  # charge.refunds and payment_intent.charges no longer included
BASIL_ONLY = {"invoice_payment.paid"}

DAY = 86_400
MONTH = 30 * DAY
_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    """A random id shaped like Stripe's: prefix_ + letters and digits."""
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def now() -> int:
    return int(time.time())


def at_least(version: str, other: str) -> bool:
    """Whether API version `version` is `other` or later (compared by date)."""
    return version[:10] >= other[:10]


def sent_at(event_type: str, version: str) -> bool:
    """Whether Stripe sends this event type at this API version (invoice_payment exists from basil on)."""
    return event_type not in BASIL_ONLY or at_least(version, BASIL)


# --- objects ----------------------------------------------------------------------------------

def customer(cus_id: str, *, email: str, name: str, created: int) -> dict:
    return {
        "id": cus_id, "object": "customer", "address": None, "balance": 0, "created": created,
        "currency": None, "default_source": None, "delinquent": False, "description": None,
        "discount": None, "email": email,
        "invoice_prefix": "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(8)),
        "invoice_settings": {"custom_fields": None, "default_payment_method": None, "footer": None,
                             "rendering_options": None},
        "livemode": False, "metadata": {}, "name": name, "next_invoice_sequence": 1, "phone": None,
        "preferred_locales": ["en-US"], "shipping": None, "tax_exempt": "none", "test_clock": None,
    }


def charge(ch_id: str, *, customer_: dict, amount: int, currency: str, created: int, payment_intent: str,
           payment_method: str, metadata: dict, invoice: str | None = None, description: str | None = None,
           failed: bool = False) -> dict:
    """A card charge (visa 4242), succeeded or declined."""
    return {
        "id": ch_id, "object": "charge", "amount": amount, "amount_captured": 0 if failed else amount,
        "amount_refunded": 0, "application": None, "application_fee": None, "application_fee_amount": None,
        "balance_transaction": None if failed else new_id("txn"),
        "billing_details": {"address": {"city": None, "country": "US", "line1": None, "line2": None,
                                        "postal_code": "94110", "state": None},
                            "email": customer_["email"], "name": customer_["name"], "phone": None},
        "calculated_statement_descriptor": "TEACHERY", "captured": not failed, "created": created,
        "currency": currency, "customer": customer_["id"], "description": description, "destination": None,
        "dispute": None, "disputed": False, "failure_balance_transaction": None,
        "failure_code": "card_declined" if failed else None,
        "failure_message": "Your card was declined." if failed else None, "fraud_details": {},
        "invoice": invoice, "livemode": False, "metadata": dict(metadata), "on_behalf_of": None,
        "outcome": ({"network_status": "declined_by_network", "reason": "generic_decline", "risk_level": "normal",
                     "risk_score": 41,
                     "seller_message": "The bank did not return any further details with this decline.",
                     "type": "issuer_declined"} if failed else
                    {"network_status": "approved_by_network", "reason": None, "risk_level": "normal",
                     "risk_score": 32, "seller_message": "Payment complete.", "type": "authorized"}),
        "paid": not failed, "payment_intent": payment_intent, "payment_method": payment_method,
        "payment_method_details": {"card": {
            "amount_authorized": None if failed else amount, "brand": "visa",
            "checks": {"address_line1_check": None, "address_postal_code_check": "pass", "cvc_check": "pass"},
            "country": "US", "exp_month": 12, "exp_year": 2034, "extended_authorization": {"status": "disabled"},
            "fingerprint": "Tq9cUfv7zL5aB1kG", "funding": "credit", "installments": None, "last4": "4242",
            "mandate": None, "network": "visa", "network_token": {"used": False}, "three_d_secure": None,
            "wallet": None}, "type": "card"},
        "radar_options": {}, "receipt_email": customer_["email"], "receipt_number": None,
        "receipt_url": f"https://pay.stripe.com/receipts/payment/{new_id('CAcQARoX', 40)}",
        "refunded": False, "refunds": {"object": "list", "data": [], "has_more": False, "total_count": 0,
                                       "url": f"/v1/charges/{ch_id}/refunds"},
        "review": None, "shipping": None, "source": None, "source_transfer": None, "statement_descriptor": None,
        "statement_descriptor_suffix": None, "status": "failed" if failed else "succeeded", "transfer_data": None,
        "transfer_group": None,
    }


def payment_intent(pi_id: str, *, charge_: dict, metadata: dict, invoice: str | None = None) -> dict:
    """The payment intent behind a charge, in the charge's final state."""
    failed = charge_["status"] == "failed"
    return {
        "id": pi_id, "object": "payment_intent", "amount": charge_["amount"], "amount_capturable": 0,
        "amount_details": {"tip": {}}, "amount_received": 0 if failed else charge_["amount"],
        "application": None, "application_fee_amount": None,
        "automatic_payment_methods": {"allow_redirects": "always", "enabled": True},
        "canceled_at": None, "cancellation_reason": None, "capture_method": "automatic_async",
        "charges": {"object": "list", "data": [copy.deepcopy(charge_)], "has_more": False, "total_count": 1,
                    "url": f"/v1/charges?payment_intent={pi_id}"},
        "client_secret": f"{pi_id}_secret_{new_id('x', 25)[2:]}", "confirmation_method": "automatic",
        "created": charge_["created"], "currency": charge_["currency"], "customer": charge_["customer"],
        "description": charge_["description"], "invoice": invoice,
        "last_payment_error": ({"charge": charge_["id"], "code": "card_declined", "decline_code": "generic_decline",
                                "message": "Your card was declined.", "type": "card_error"} if failed else None),
        "latest_charge": charge_["id"], "livemode": False, "metadata": dict(metadata), "next_action": None,
        "on_behalf_of": None, "payment_method": charge_["payment_method"],
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"installments": None, "mandate_options": None, "network": None,
                                            "request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"], "processing": None, "receipt_email": charge_["receipt_email"],
        "review": None, "setup_future_usage": None, "shipping": None, "source": None,
        "statement_descriptor": None, "statement_descriptor_suffix": None,
        "status": "requires_payment_method" if failed else "succeeded", "transfer_data": None,
        "transfer_group": None,
    }


def checkout_session(cs_id: str, *, customer_: dict, mode: str, amount: int, currency: str, created: int,
                     metadata: dict, payment_intent: str | None = None, subscription: str | None = None,
                     invoice: str | None = None) -> dict:
    """A completed, paid Checkout Session (mode payment or subscription)."""
    return {
        "id": cs_id, "object": "checkout.session", "adaptive_pricing": {"enabled": False},
        "after_expiration": None, "allow_promotion_codes": None, "amount_subtotal": amount,
        "amount_total": amount,
        "automatic_tax": {"enabled": False, "liability": None, "status": None},
        "billing_address_collection": None, "cancel_url": "https://teachery.example/checkout/cancel",
        "client_reference_id": None, "client_secret": None, "consent": None, "consent_collection": None,
        "created": created, "currency": currency, "currency_conversion": None, "custom_fields": [],
        "custom_text": {"after_submit": None, "shipping_address": None, "submit": None,
                        "terms_of_service_acceptance": None},
        "customer": customer_["id"], "customer_creation": "always" if mode == "payment" else None,
        "customer_details": {"address": {"city": None, "country": "US", "line1": None, "line2": None,
                                         "postal_code": "94110", "state": None},
                             "email": customer_["email"], "name": customer_["name"], "phone": None,
                             "tax_exempt": "none", "tax_ids": []},
        "customer_email": None, "expires_at": created + DAY, "invoice": invoice,
        "invoice_creation": ({"enabled": False, "invoice_data": {"account_tax_ids": None, "custom_fields": None,
                                                                 "description": None, "footer": None,
                                                                 "issuer": None, "metadata": {},
                                                                 "rendering_options": None}}
                             if mode == "payment" else None),
        "livemode": False, "locale": None, "metadata": dict(metadata), "mode": mode,
        "payment_intent": payment_intent, "payment_link": None,
        "payment_method_collection": "always" if mode == "subscription" else "if_required",
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"], "payment_status": "paid", "phone_number_collection": {"enabled": False},
        "recovered_from": None, "saved_payment_method_options": None, "setup_intent": None,
        "shipping_address_collection": None, "shipping_cost": None, "shipping_details": None,
        "shipping_options": [], "status": "complete", "submit_type": None, "subscription": subscription,
        "success_url": "https://teachery.example/checkout/success?session_id={CHECKOUT_SESSION_ID}",
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0}, "ui_mode": "hosted",
        "url": None,
    }


def refund(re_id: str, *, charge_: dict, amount: int, reason: str | None, created: int,
           status: str = "succeeded", metadata: dict | None = None) -> dict:
    return {
        "id": re_id, "object": "refund", "amount": amount, "balance_transaction": new_id("txn"),
        "charge": charge_["id"], "created": created, "currency": charge_["currency"],
        "destination_details": {"card": {"reference_status": "pending", "reference_type": "acquirer_reference_number",
                                         "type": "refund"}, "type": "card"},
        "metadata": dict(metadata or {}), "payment_intent": charge_["payment_intent"], "reason": reason,
        "receipt_number": None, "source_transfer_reversal": None, "status": status, "transfer_reversal": None,
    }


def price(price_id: str, *, product: str, amount: int, currency: str, created: int) -> dict:
    return {
        "id": price_id, "object": "price", "active": True, "billing_scheme": "per_unit", "created": created,
        "currency": currency, "custom_unit_amount": None, "livemode": False, "lookup_key": None, "metadata": {},
        "nickname": None, "product": product,
        "recurring": {"aggregate_usage": None, "interval": "month", "interval_count": 1, "meter": None,
                      "trial_period_days": None, "usage_type": "licensed"},
        "tax_behavior": "unspecified", "tiers_mode": None, "transform_quantity": None, "type": "recurring",
        "unit_amount": amount, "unit_amount_decimal": str(amount),
    }


def plan_of(price_: dict) -> dict:
    """The legacy `plan` Stripe still sends beside each recurring price."""
    return {
        "id": price_["id"], "object": "plan", "active": True, "aggregate_usage": None,
        "amount": price_["unit_amount"], "amount_decimal": price_["unit_amount_decimal"],
        "billing_scheme": "per_unit", "created": price_["created"], "currency": price_["currency"],
        "interval": "month", "interval_count": 1, "livemode": False, "metadata": {}, "meter": None,
        "nickname": None, "product": price_["product"], "tiers_mode": None, "transform_usage": None,
        "trial_period_days": None, "usage_type": "licensed",
    }


def subscription(sub_id: str, *, customer_: dict, price_: dict, created: int, metadata: dict,
                 payment_method: str, latest_invoice: str | None) -> dict:
    """An active monthly subscription with one item."""
    item = {"id": new_id("si", 14), "object": "subscription_item", "billing_thresholds": None, "created": created,
            "discounts": [], "metadata": {}, "plan": plan_of(price_), "price": copy.deepcopy(price_),
            "quantity": 1, "subscription": sub_id, "tax_rates": []}
    return {
        "id": sub_id, "object": "subscription", "application": None, "application_fee_percent": None,
        "automatic_tax": {"enabled": False, "liability": None}, "billing_cycle_anchor": created,
        "billing_cycle_anchor_config": None, "billing_thresholds": None, "cancel_at": None,
        "cancel_at_period_end": False, "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically", "created": created, "currency": price_["currency"],
        "current_period_end": created + MONTH, "current_period_start": created, "customer": customer_["id"],
        "days_until_due": None, "default_payment_method": payment_method, "default_source": None,
        "default_tax_rates": [], "description": None, "discount": None, "discounts": [], "ended_at": None,
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": {"object": "list", "data": [item], "has_more": False, "total_count": 1,
                  "url": f"/v1/subscription_items?subscription={sub_id}"},
        "latest_invoice": latest_invoice, "livemode": False, "metadata": dict(metadata),
        "next_pending_invoice_item_invoice": None, "on_behalf_of": None, "pause_collection": None,
        "payment_settings": {"payment_method_options": None, "payment_method_types": None,
                             "save_default_payment_method": "off"},
        "pending_invoice_item_interval": None, "pending_setup_intent": None, "pending_update": None,
        "plan": plan_of(price_), "quantity": 1, "schedule": None, "start_date": created, "status": "active",
        "test_clock": None, "transfer_data": None, "trial_end": None,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}}, "trial_start": None,
    }


def invoice(in_id: str, *, subscription_: dict, customer_: dict, charge_: dict, billing_reason: str,
            created: int) -> dict:
    """The paid invoice of one subscription period; the line carries the subscription's metadata."""
    item = subscription_["items"]["data"][0]
    amount = charge_["amount"]
    start, end = subscription_["current_period_start"], subscription_["current_period_end"]
    line = {
        "id": new_id("il"), "object": "line_item", "amount": amount, "amount_excluding_tax": amount,
        "currency": charge_["currency"],
        "description": f"1 × Course subscription (at {amount / 100:.2f} {charge_['currency'].upper()} / month)",
        "discount_amounts": [], "discountable": True, "discounts": [], "invoice": in_id, "livemode": False,
        "metadata": dict(subscription_["metadata"]), "period": {"end": end, "start": start},
        "plan": copy.deepcopy(item["plan"]), "price": copy.deepcopy(item["price"]), "proration": False,
        "proration_details": {"credited_items": None}, "quantity": 1, "subscription": subscription_["id"],
        "subscription_item": item["id"], "tax_amounts": [], "tax_rates": [], "type": "subscription",
        "unit_amount_excluding_tax": str(amount),
    }
    return {
        "id": in_id, "object": "invoice", "account_country": "US", "account_name": "Teachery creator",
        "account_tax_ids": None, "amount_due": amount, "amount_paid": amount, "amount_remaining": 0,
        "amount_shipping": 0, "application": None, "application_fee_amount": None, "attempt_count": 1,
        "attempted": True, "auto_advance": False,
        "automatic_tax": {"enabled": False, "liability": None, "status": None},
        "billing_reason": billing_reason, "charge": charge_["id"], "collection_method": "charge_automatically",
        "created": created, "currency": charge_["currency"], "custom_fields": None, "customer": customer_["id"],
        "customer_address": None, "customer_email": customer_["email"], "customer_name": customer_["name"],
        "customer_phone": None, "customer_shipping": None, "customer_tax_exempt": "none", "customer_tax_ids": [],
        "default_payment_method": None, "default_source": None, "default_tax_rates": [], "description": None,
        "discount": None, "discounts": [], "due_date": None, "effective_at": created, "ending_balance": 0,
        "footer": None, "from_invoice": None,
        "hosted_invoice_url": f"https://invoice.stripe.com/i/{new_id('acct', 16)}/test_{new_id('x', 40)[2:]}",
        "invoice_pdf": f"https://pay.stripe.com/invoice/{new_id('acct', 16)}/test_{new_id('x', 40)[2:]}/pdf",
        "issuer": {"type": "self"}, "last_finalization_error": None, "latest_revision": None,
        "lines": {"object": "list", "data": [line], "has_more": False, "total_count": 1,
                  "url": f"/v1/invoices/{in_id}/lines"},
        "livemode": False, "metadata": {}, "next_payment_attempt": None,
        "number": f"{customer_.get('invoice_prefix', 'TEACH')}-{secrets.randbelow(9000) + 1000}",
        "on_behalf_of": None, "paid": True, "paid_out_of_band": False, "payment_intent": charge_["payment_intent"],
        "payment_settings": {"default_mandate": None, "payment_method_options": None, "payment_method_types": None},
        "period_end": created, "period_start": created if billing_reason == "subscription_create" else start - MONTH,
        "post_payment_credit_notes_amount": 0, "pre_payment_credit_notes_amount": 0, "quote": None,
        "receipt_number": None, "rendering": None, "shipping_cost": None, "shipping_details": None,
        "starting_balance": 0, "statement_descriptor": None, "status": "paid",
        "status_transitions": {"finalized_at": created, "marked_uncollectible_at": None, "paid_at": created,
                               "voided_at": None},
        "subscription": subscription_["id"], "subscription_details": {"metadata": dict(subscription_["metadata"])},
        "subtotal": amount, "subtotal_excluding_tax": amount, "tax": None, "test_clock": None, "total": amount,
        "total_discount_amounts": [], "total_excluding_tax": amount, "total_tax_amounts": [],
        "transfer_data": None, "webhooks_delivered_at": None,
    }


def invoice_payment(invoice_: dict) -> dict:
    """basil's link between an invoice and the payment intent that paid it (invoice_payment.paid)."""
    return {
        "id": "inpay_" + invoice_["id"].removeprefix("in_"), "object": "invoice_payment",
        "amount_paid": invoice_["amount_paid"],
        "amount_requested": invoice_["amount_due"], "created": invoice_["created"], "currency": invoice_["currency"],
        "invoice": invoice_["id"], "is_default": True, "livemode": False,
        "payment": {"type": "payment_intent", "payment_intent": invoice_["payment_intent"]},
        "status": "paid", "status_transitions": {"canceled_at": None, "paid_at": invoice_["created"]},
    }


# --- API versions -----------------------------------------------------------------------------

def for_api_version(obj: dict, version: str) -> dict:
    """A copy of obj as Stripe renders it at this API version (the objects above are 2024-06-20)."""
    obj = copy.deepcopy(obj)
    kind = obj.get("object")
    if not at_least(version, LISTS_DROPPED):
        if kind == "payment_intent":
            obj.pop("latest_charge", None)
    else:
        if kind == "charge":
            obj.pop("refunds", None)
        if kind == "payment_intent":
            obj.pop("charges", None)
    if at_least(version, BASIL):
        _to_basil(obj, kind)
    return obj


def _to_basil(obj: dict, kind: str | None) -> None:
    if kind in ("charge", "payment_intent"):
        obj.pop("invoice", None)
    elif kind == "subscription":
        start, end = obj.pop("current_period_start"), obj.pop("current_period_end")
        for key in ("plan", "quantity", "discount"):
            obj.pop(key, None)
        obj["billing_mode"] = {"type": "classic"}
        for item in obj["items"]["data"]:
            item.update(current_period_start=start, current_period_end=end)
    elif kind == "invoice":
        payment = invoice_payment(obj)
        sub_id = obj.pop("subscription")
        details = obj.pop("subscription_details")
        for key in ("charge", "payment_intent", "paid", "paid_out_of_band", "tax", "total_tax_amounts", "quote"):
            obj.pop(key, None)
        obj["parent"] = {"type": "subscription_details", "quote_details": None,
                         "subscription_details": {"metadata": details["metadata"], "subscription": sub_id}}
        obj["payments"] = {"object": "list", "data": [payment], "has_more": False,
                           "url": f"/v1/invoice_payments?invoice={obj['id']}"}
        for line in obj["lines"]["data"]:
            item_id = line.pop("subscription_item")
            for key in ("plan", "price", "proration", "proration_details", "subscription", "type",
                        "tax_amounts", "tax_rates", "unit_amount_excluding_tax", "amount_excluding_tax"):
                line.pop(key, None)
            line["parent"] = {"type": "subscription_item_details", "invoice_item_details": None,
                              "subscription_item_details": {"invoice_item": None, "proration": False,
                                                            "proration_details": {"credited_items": None},
                                                            "subscription": sub_id, "subscription_item": item_id}}
            line["pricing"] = {"type": "price_details", "price_details": {"price": None, "product": None},
                               "unit_amount_decimal": str(line["amount"])}


# --- the envelope -----------------------------------------------------------------------------

def event(type_: str, obj: dict, *, api_version: str, account: str | None, created: int,
          before: dict | None = None, from_request: bool = True) -> dict:
    """A full Event envelope around a snapshot of obj (shaped like the supabase fixtures'); with the
    object's state `before` the change, `data.previous_attributes` says what changed."""
    data: dict = {"object": for_api_version(obj, api_version)}
    if before is not None:
        data["previous_attributes"] = previous_attributes(for_api_version(before, api_version), data["object"])
    envelope = {
        "id": new_id("evt"), "object": "event", "api_version": api_version, "created": created, "data": data,
        "livemode": False, "pending_webhooks": 1,
        "request": ({"id": new_id("req", 14), "idempotency_key": str(uuid.uuid4())} if from_request
                    else {"id": None, "idempotency_key": None}),
        "type": type_,
    }
    if account is not None:
        envelope["account"] = account  # Connect: events of a connected account name it at the top level
    return envelope


def previous_attributes(before: dict, after: dict) -> dict:
    """Stripe's data.previous_attributes: the old values of the top-level fields that changed."""
    return {key: copy.deepcopy(before.get(key)) for key in after if before.get(key) != after.get(key)}
