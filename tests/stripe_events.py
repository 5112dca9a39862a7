"""Builders of Stripe objects and Event envelopes for the tests (the fake Stripe API is tests/fake_stripe).

Every builder starts from a real payload in ../shared/fixtures/stripe (named in its docstring)
and changes only the fields a test cares about, so the rest of the shape stays Stripe's own.
API versions 2020-03-02 … 2025-03-31.basil are covered by `api_version`:

- 2022-11-15 stopped including `charge.refunds` and `payment_intent.charges` (use
  `payment_intent.latest_charge`);
- 2025-03-31.basil moved `invoice.subscription` to `invoice.parent.subscription_details.subscription`,
  replaced `invoice.charge`/`invoice.payment_intent` with `invoice.payments` (invoice_payment
  objects), dropped `charge.invoice`, and moved `current_period_start/end` onto subscription items
  (shapes from openapi/fixtures3.json at HEAD f6c2a48f).
"""
from __future__ import annotations

import copy
import itertools

from tests.support import API_VERSIONS, BASIL, OLD, V2022, V2024, at_least, iso, load_fixture

# Re-exported for the modules that build payloads from here.
__all__ = ["API_VERSIONS", "BASIL", "OLD", "V2022", "V2024", "iso"]


SUPABASE = "events/supabase_stripe-sync-engine__packages__fastify-app__src__test__stripe__{}.json"
OPENAPI_HEAD = "objects/stripe_openapi__openapi__fixtures3.json@HEAD-f6c2a48f__resources.{}.json"

T0 = 1_735_689_600  # 2025-01-01T00:00:00Z
DAY = 86_400

_counter = itertools.count(1)


def _template(name: str) -> dict:
    """The data.object of a supabase stripe-sync-engine event fixture (api 2020-03-02)."""
    return copy.deepcopy(load_fixture(SUPABASE.format(name))["data"]["object"])


def new_id(prefix: str) -> str:
    """A fresh Stripe-looking id (unique within the test session)."""
    return f"{prefix}_T{next(_counter):06d}x"


# --- objects ----------------------------------------------------------------------------------

def customer(cus_id: str, *, email: str, name: str, created: int = T0 - DAY, metadata: dict | None = None) -> dict:
    """A customer, shaped like supabase customer_updated.json."""
    obj = _template("customer_updated")
    obj.update(id=cus_id, email=email, name=name, created=created, metadata=metadata or {},
               description=None, phone=None, shipping=None, livemode=False)
    obj["sources"]["url"] = f"/v1/customers/{cus_id}/sources"
    obj["tax_ids"]["url"] = f"/v1/customers/{cus_id}/tax_ids"
    return obj


def deleted_customer(cus_id: str) -> dict:
    """What customer.deleted carries and GET /v1/customers/{id} answers afterwards
    (supabase customer_deleted.json: only id, object and deleted)."""
    obj = _template("customer_deleted")
    obj["id"] = cus_id
    return obj


def refund(re_id: str, *, charge: str, amount: int, status: str = "succeeded", created: int = T0,
           payment_intent: str | None = None, reason: str | None = None, currency: str = "usd") -> dict:
    """A refund, shaped like supabase refund_created.json (failure fields as in zulip refund_event.json)."""
    obj = _template("refund_created")
    obj.update(id=re_id, charge=charge, amount=amount, status=status, created=created,
               payment_intent=payment_intent, reason=reason, currency=currency,
               balance_transaction=f"txn_{re_id[3:]}")
    if status == "failed":
        obj["failure_reason"] = "expired_or_canceled_card"
        obj["failure_balance_transaction"] = f"txn_f{re_id[3:]}"
    return obj


def charge(ch_id: str, *, customer: str, amount: int, created: int = T0, currency: str = "usd",
           payment_intent: str | None = None, invoice: str | None = None, metadata: dict | None = None,
           status: str = "succeeded", refunds: list[dict] = (), api_version: str = OLD,
           payment_method_type: str = "card", disputed: bool = False) -> dict:
    """A charge, shaped like supabase charge_succeeded.json; `refunds` are refund() dicts.

    amount_refunded is Stripe's cumulative figure: pending and succeeded refunds count. A delayed
    method (`us_bank_account`, `konbini`) replaces the card details; an ACH debit is `pending` until it
    settles (charge.succeeded) or fails (charge.failed).
    """
    obj = _template("charge_succeeded")
    refunded = sum(r["amount"] for r in refunds if r["status"] in ("pending", "requires_action", "succeeded"))
    obj.update(id=ch_id, customer=customer, amount=amount, amount_captured=amount if status == "succeeded" else 0,
               created=created, currency=currency, payment_intent=payment_intent, invoice=invoice,
               metadata=metadata or {}, status=status, paid=status == "succeeded",
               captured=status == "succeeded", amount_refunded=refunded, refunded=refunded >= amount,
               description=None, balance_transaction=f"txn_{ch_id[3:]}")
    obj["receipt_url"] = f"https://pay.stripe.com/receipts/{ch_id}/rcpt_test"
    obj["disputed"] = disputed
    if payment_method_type != "card":
        details = {"us_bank_account": {"account_holder_type": "individual", "account_type": "checking",
                                       "bank_name": "STRIPE TEST BANK", "last4": "6789", "routing_number": "110000000"},
                   "konbini": {"store": {"chain": "familymart"}}}.get(payment_method_type, {})
        obj["payment_method_details"] = {"type": payment_method_type, payment_method_type: details}
    if status == "failed":
        obj.update(failure_code="card_declined", failure_message="Your card was declined.",
                   balance_transaction=None)
        obj["outcome"] = {**obj["outcome"], "network_status": "declined_by_network", "type": "issuer_declined",
                          "reason": None, "seller_message": "The bank did not return any further details."}
    if at_least(api_version, V2022):
        del obj["refunds"]  # not included since 2022-11-15
    else:
        obj["refunds"] = {"object": "list", "data": [copy.deepcopy(r) for r in refunds], "has_more": False,
                          "total_count": len(refunds), "url": f"/v1/charges/{ch_id}/refunds"}
    if at_least(api_version, BASIL):
        obj.pop("invoice", None)
    return obj


def payment_intent(pi_id: str, *, customer: str, amount: int, latest_charge: dict | None,
                   created: int = T0, currency: str = "usd", metadata: dict | None = None,
                   status: str = "succeeded", api_version: str = OLD, invoice: str | None = None,
                   charges: list[dict] | None = None, payment_method_type: str | None = None) -> dict:
    """A payment intent, shaped like supabase payment_intent_succeeded.json (a succeeded one) and
    payment_intent_payment_failed.json (`last_payment_error` names the failed charge, status
    requires_payment_method). `charges` (before 2022-11-15) defaults to [latest_charge]; `invoice` is
    dropped in basil."""
    obj = _template("payment_intent_succeeded")
    obj.update(id=pi_id, customer=customer, amount=amount, amount_received=amount if status == "succeeded" else 0,
               created=created, currency=currency, metadata=metadata or {}, status=status,
               client_secret=f"{pi_id}_secret_test", description=None, invoice=invoice,
               payment_method=latest_charge["payment_method"] if latest_charge else None)
    if payment_method_type:
        obj["payment_method_types"] = [payment_method_type]
    if status == "requires_payment_method" and latest_charge:
        obj["last_payment_error"] = {"charge": latest_charge["id"], "code": latest_charge.get("failure_code")
                                     or "card_declined", "message": latest_charge.get("failure_message"),
                                     "type": "card_error"}
        obj["payment_method"] = None
    if at_least(api_version, V2022):
        obj["latest_charge"] = latest_charge["id"] if latest_charge else None
        obj.pop("charges", None)
    else:
        obj.pop("latest_charge", None)
        data = [copy.deepcopy(c) for c in (charges if charges is not None else [latest_charge] if latest_charge
                                            else [])]
        obj["charges"] = {"object": "list", "data": data, "has_more": False, "total_count": len(data),
                          "url": f"/v1/charges?payment_intent={pi_id}"}
    if at_least(api_version, BASIL):
        obj.pop("invoice", None)
    return obj


def checkout_session(cs_id: str, *, customer: str, email: str, name: str, amount_total: int,
                     mode: str = "payment", payment_intent: str | None = None, subscription: str | None = None,
                     invoice: str | None = None, metadata: dict | None = None, created: int = T0,
                     currency: str = "usd", payment_status: str = "paid") -> dict:
    """A completed Checkout Session, shaped like supabase checkout_session_completed.json. With a delayed
    payment method (ACH, konbini) it completes "unpaid" and async_payment_succeeded/failed follow."""
    obj = _template("checkout_session_completed")
    obj.update(id=cs_id, customer=customer, amount_total=amount_total, amount_subtotal=amount_total,
               mode=mode, payment_intent=payment_intent, subscription=subscription, invoice=invoice,
               metadata=metadata or {}, created=created, expires_at=created + DAY, currency=currency,
               livemode=False, status="complete", payment_status=payment_status)
    obj["customer_details"] = {**obj["customer_details"], "email": email, "name": name}
    obj["total_details"] = {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0}
    return obj


def subscription(sub_id: str, *, customer: str, created: int = T0, status: str = "active",
                 metadata: dict | None = None, current_period_start: int | None = None,
                 current_period_end: int | None = None, cancel_at_period_end: bool = False,
                 cancel_at: int | None = None, canceled_at: int | None = None, ended_at: int | None = None,
                 pause_collection: dict | None = None, api_version: str = OLD) -> dict:
    """A subscription, shaped like supabase subscription_created.json; for basil the period moves onto
    the item (openapi fixtures3.json HEAD: items.data[].current_period_end)."""
    obj = _template("subscription_created")
    start = created if current_period_start is None else current_period_start
    end = start + 30 * DAY if current_period_end is None else current_period_end
    obj.update(id=sub_id, customer=customer, created=created, start_date=created, billing_cycle_anchor=created,
               status=status, metadata=metadata or {}, cancel_at_period_end=cancel_at_period_end,
               cancel_at=cancel_at, canceled_at=canceled_at, ended_at=ended_at,
               pause_collection=copy.deepcopy(pause_collection), latest_invoice=None,
               current_period_start=start, current_period_end=end)
    item = obj["items"]["data"][0]
    item.update(id=f"si_{sub_id[4:]}", subscription=sub_id, created=created)
    item["price"].update(unit_amount=4900, unit_amount_decimal="4900")
    item["plan"].update(amount=4900, amount_decimal="4900")
    obj["items"]["data"] = [item]
    obj["items"]["url"] = f"/v1/subscription_items?subscription={sub_id}"
    if at_least(api_version, BASIL):
        del obj["current_period_start"], obj["current_period_end"]
        obj.pop("plan", None), obj.pop("quantity", None), obj.pop("tax_percent", None)
        item.update(current_period_start=start, current_period_end=end, discounts=[])
        obj["billing_mode"] = {"type": "classic"}
        obj["cancellation_details"] = {"comment": None, "feedback": None,
                                       "reason": "cancellation_requested" if canceled_at else None}
    return obj


def invoice(in_id: str, *, customer: str, subscription: str | None, amount_paid: int,
            charge: str | None = None, payment_intent: str | None = None, created: int = T0,
            subscription_metadata: dict | None = None, currency: str = "usd",
            billing_reason: str = "subscription_create", api_version: str = OLD, status: str = "paid",
            amount_due: int | None = None, attempt_count: int = 1, include_payments: bool = True,
            paid_at: int | None = None) -> dict:
    """An invoice, shaped like supabase invoice_paid.json; for basil like openapi fixtures3.json HEAD
    (parent.subscription_details, no charge/payment_intent/subscription) with `payments` included
    unless `include_payments` is false (it is an includable field: webhooks may lack it).

    `status` "open" (with amount_paid 0) is an invoice whose payment attempt failed, as
    invoice.payment_failed carries it: `charge`/`payment_intent` name the failed attempt before basil,
    and its invoice_payment stays "open" in basil."""
    obj = _template("invoice_paid")
    paid = status == "paid"
    due = amount_paid if amount_due is None else amount_due
    obj.update(id=in_id, customer=customer, subscription=subscription, charge=charge, payment_intent=payment_intent,
               amount_due=due, amount_paid=amount_paid, amount_remaining=due - amount_paid, subtotal=due,
               total=due, created=created, currency=currency, billing_reason=billing_reason,
               paid=paid, status=status, number=f"N-{in_id[3:]}", livemode=False, custom_fields=None,
               webhooks_delivered_at=created, period_start=created, period_end=created,
               attempt_count=attempt_count, attempted=True,
               next_payment_attempt=None if paid else created + 3 * DAY)
    obj["status_transitions"] = {"finalized_at": created, "marked_uncollectible_at": None,
                                 "paid_at": (paid_at or created) if paid else None, "voided_at": None}
    line = obj["lines"]["data"][0]
    line.update(id=f"il_{in_id[3:]}", subscription=subscription, amount=amount_paid, currency=currency,
                metadata=dict(subscription_metadata or {}), period={"start": created, "end": created + 30 * DAY})
    obj["lines"]["data"] = [line]
    obj["lines"]["url"] = f"/v1/invoices/{in_id}/lines"
    if at_least(api_version, BASIL):
        for key in ("subscription", "charge", "payment_intent", "paid", "tax", "tax_percent"):
            obj.pop(key, None)
        line.pop("subscription", None)
        line.pop("plan", None)
        price = line.pop("price", None) or {}  # basil: `pricing`, which names the price by id only
        line["pricing"] = {"type": "price_details", "unit_amount_decimal": str(amount_paid),
                           "price_details": {"price": price.get("id"), "product": price.get("product")}}
        line["parent"] = {"type": "subscription_item_details", "invoice_item_details": None,
                          "subscription_item_details": {"invoice_item": None, "proration": False,
                                                        "proration_details": {"credited_items": None},
                                                        "subscription": subscription,
                                                        "subscription_item": f"si_{(subscription or 'sub_x')[4:]}"}}
        obj["parent"] = ({"type": "subscription_details", "quote_details": None,
                          "subscription_details": {"metadata": dict(subscription_metadata or {}),
                                                   "subscription": subscription}}
                         if subscription else None)
        payment = ({"type": "payment_intent", "payment_intent": payment_intent} if payment_intent
                   else {"type": "charge", "charge": charge})
        if include_payments and (payment_intent or charge):
            obj["payments"] = {"object": "list", "has_more": False,
                               "url": f"/v1/invoice_payments?invoice={in_id}",
                               "data": [invoice_payment(in_id, payment, amount=due, created=created, currency=currency,
                                                        paid=paid)]}
    elif at_least(api_version, "2022-01-01"):
        obj["subscription_details"] = {"metadata": dict(subscription_metadata or {})}
    return obj


def invoice_payment(in_id: str, payment: dict, *, amount: int, created: int = T0, currency: str = "usd",
                    paid: bool = True) -> dict:
    """An invoice_payment (basil), shaped like supabase invoice_payment_paid.json: "open" while its payment
    is unpaid (a failed attempt leaves it open), "paid" once paid."""
    ref_id = payment.get("payment_intent") or payment.get("charge")
    return {"id": f"inpay_{ref_id[3:]}", "object": "invoice_payment", "amount_paid": amount if paid else None,
            "amount_requested": amount, "created": created, "currency": currency, "invoice": in_id,
            "is_default": True, "livemode": False, "payment": dict(payment), "status": "paid" if paid else "open",
            "status_transitions": {"canceled_at": None, "paid_at": created if paid else None}}


def dispute(dp_id: str, *, charge: str, amount: int, payment_intent: str | None = None, status: str = "needs_response",
            created: int = T0, currency: str = "usd") -> dict:
    """A dispute, shaped like supabase charge_dispute_created.json."""
    obj = copy.deepcopy(load_fixture(SUPABASE.format("charge_dispute_created"))["data"]["object"])
    obj.update(id=dp_id, charge=charge, amount=amount, payment_intent=payment_intent, status=status,
               created=created, currency=currency, is_charge_refundable=status in ("needs_response",
                                                                                   "warning_needs_response"))
    return obj


# --- envelopes --------------------------------------------------------------------------------

def event(type_: str, obj: dict, *, created: int, account: str | None = None, api_version: str = OLD,
          previous_attributes: dict | None = None, event_id: str | None = None) -> dict:
    """An Event envelope, shaped like the supabase fixtures (object, api_version, data, request...)."""
    envelope = {
        "id": event_id or new_id("evt"),
        "object": "event",
        "api_version": api_version,
        "created": created,
        "data": {"object": copy.deepcopy(obj)},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type_,
    }
    if previous_attributes is not None:
        envelope["data"]["previous_attributes"] = copy.deepcopy(previous_attributes)
    if account is not None:
        envelope["account"] = account  # Connect events carry the connected account at the top level
    return envelope
