"""What happens in Stripe for each `teachery-sync trigger EVENT_TYPE`, and the events it sends.

Each scenario changes the objects of one account in the trigger state (so that a refund refunds
the charge a purchase made, a pause pauses the subscription it made) and returns the events
Stripe would send for the change, in the order it usually sends them.
"""
from __future__ import annotations

import copy
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from trigger import samples as so

# the choices `dev trigger` offers are the ones the admin actions accept
from workers.stripe_objects import PAUSE_BEHAVIORS as PAUSE_BEHAVIORS
from workers.stripe_objects import REFUND_REASONS as REFUND_REASONS

PLATFORM = "platform"  # the state's key for events without a connected account
DEFAULT_AMOUNT = 4900
DEFAULT_COURSE = "course_demo"
SUBSCRIPTION_CHANGES = ("pause", "resume", "cancel-at-period-end", "reactivate")
CHECKOUT_MODES = ("payment", "subscription")


class TriggerError(Exception):
    """The trigger cannot be built as asked; the message says why and what to do."""


@dataclass(frozen=True)
class TriggerOptions:
    account: str | None = None
    customer: str | None = None
    charge: str | None = None
    refund: str | None = None
    subscription: str | None = None
    amount: int | None = None
    currency: str = "usd"
    course: str = DEFAULT_COURSE
    mode: str = "payment"
    change: str | None = None
    behavior: str = "void"
    resumes_at: int | None = None
    reason: str | None = None
    email: str | None = None
    name: str | None = None


@dataclass
class Emitted:
    """One event to send: its type, the object's state after the change and, for *.updated, before."""
    type: str
    obj: dict
    before: dict | None = None
    from_request: bool = True


@dataclass
class AccountObjects:
    """The objects of one account that earlier triggers created, and which was the last of each kind."""
    customers: dict[str, dict] = field(default_factory=dict)
    charges: dict[str, dict] = field(default_factory=dict)
    refunds: dict[str, dict] = field(default_factory=dict)
    subscriptions: dict[str, dict] = field(default_factory=dict)
    last: dict[str, str] = field(default_factory=dict)

    def remember(self, kind: str, obj: dict) -> dict:
        getattr(self, kind)[obj["id"]] = obj
        self.last[kind] = obj["id"]
        return obj

    def find(self, kind: str, wanted: str | None, option: str, hint: str) -> dict:
        """The object named by --option, else the last one; TriggerError when there is none."""
        objects = getattr(self, kind)
        object_id = wanted or self.last.get(kind)
        if object_id is None:
            raise TriggerError(f"no {kind[:-1]} to use yet: {hint}")
        if object_id not in objects:
            raise TriggerError(f"{object_id} is not one that `trigger` made (see --state); {hint}, "
                               f"or pass {option} with one it made")
        return objects[object_id]


class TriggerState:
    """The JSON file (default .dev/trigger-state.json) that keeps the objects between triggers."""

    def __init__(self, path: Path | None, accounts: dict[str, AccountObjects] | None = None):
        self.path = path
        self.accounts = accounts or {}

    @classmethod
    def load(cls, path: Path | None) -> TriggerState:
        if path is None or not path.exists():
            return cls(path)
        try:
            raw = json.loads(path.read_text())
            return cls(path, {key: AccountObjects(**value) for key, value in raw.get("accounts", {}).items()})
        except (ValueError, TypeError) as exc:
            raise TriggerError(f"{path} is not a trigger state file ({exc}); delete it to start afresh") from exc

    def of(self, account: str | None) -> AccountObjects:
        return self.accounts.setdefault(account or PLATFORM, AccountObjects())

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {"accounts": {key: vars(objs) for key, objs in self.accounts.items()}}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body, indent=1))
        os.replace(tmp, self.path)


# --- purchases --------------------------------------------------------------------------------

def _customer_for_purchase(objs: AccountObjects, opts: TriggerOptions, created: int) -> tuple[dict, list[Emitted]]:
    """The customer named by --customer (made with that id when new), else a new one."""
    if opts.customer and opts.customer in objs.customers:
        return objs.remember("customers", objs.customers[opts.customer]), []
    suffix = secrets.token_hex(2)
    customer = so.customer(opts.customer or so.new_id("cus", 14),
                           email=opts.email or f"jenny.rosen+{suffix}@example.com",
                           name=opts.name or "Jenny Rosen", created=created)
    return objs.remember("customers", customer), [Emitted("customer.created", customer)]


def _amount(opts: TriggerOptions) -> int:
    amount = DEFAULT_AMOUNT if opts.amount is None else opts.amount
    if amount <= 0:
        raise TriggerError("--amount must be a positive number of cents")
    return amount


def checkout_completed(objs: AccountObjects, opts: TriggerOptions, now: int) -> list[Emitted]:
    """A Checkout purchase of a course: one-off payment, or the first month of a subscription."""
    customer, emitted = _customer_for_purchase(objs, opts, now)
    metadata = {"course_id": opts.course}
    if opts.mode == "subscription":
        return emitted + _subscription_purchase(objs, customer, opts, metadata, now)
    charge = objs.remember("charges", so.charge(
        so.new_id("ch"), customer_=customer, amount=_amount(opts), currency=opts.currency, created=now,
        payment_intent=so.new_id("pi"), payment_method=so.new_id("pm"), metadata=metadata))
    intent = so.payment_intent(charge["payment_intent"], charge_=charge, metadata=metadata)
    session = so.checkout_session(so.new_id("cs_test", 58), customer_=customer, mode="payment",
                                  amount=charge["amount"], currency=opts.currency, created=now,
                                  metadata=metadata, payment_intent=intent["id"])
    return emitted + [Emitted("charge.succeeded", charge), Emitted("payment_intent.succeeded", intent),
                      Emitted("checkout.session.completed", session)]


def _subscription_purchase(objs, customer, opts, metadata, now) -> list[Emitted]:
    price = so.price(so.new_id("price"), product=so.new_id("prod", 14), amount=_amount(opts),
                     currency=opts.currency, created=now)
    invoice_id = so.new_id("in")
    subscription = objs.remember("subscriptions", so.subscription(
        so.new_id("sub"), customer_=customer, price_=price, created=now, metadata=metadata,
        payment_method=so.new_id("pm"), latest_invoice=invoice_id))
    session = so.checkout_session(so.new_id("cs_test", 58), customer_=customer, mode="subscription",
                                  amount=price["unit_amount"], currency=opts.currency, created=now,
                                  metadata=metadata, subscription=subscription["id"], invoice=invoice_id)
    return ([Emitted("customer.subscription.created", subscription)]
            + _invoice_payment(objs, customer, subscription, invoice_id, "subscription_create", now)
            + [Emitted("checkout.session.completed", session)])


def _invoice_payment(objs, customer, subscription, invoice_id, billing_reason, now) -> list[Emitted]:
    """The charge, payment intent and paid invoice of one subscription period."""
    charge = objs.remember("charges", so.charge(
        so.new_id("ch"), customer_=customer, amount=subscription["plan"]["amount"],
        currency=subscription["currency"], created=now, payment_intent=so.new_id("pi"),
        payment_method=subscription["default_payment_method"], metadata={}, invoice=invoice_id,
        description="Subscription creation" if billing_reason == "subscription_create" else "Subscription update"))
    intent = so.payment_intent(charge["payment_intent"], charge_=charge, metadata={}, invoice=invoice_id)
    invoice = so.invoice(invoice_id, subscription_=subscription, customer_=customer, charge_=charge,
                         billing_reason=billing_reason, created=now)
    automatic = billing_reason != "subscription_create"  # renewals come from no API request
    return [Emitted("charge.succeeded", charge, from_request=not automatic),
            Emitted("payment_intent.succeeded", intent, from_request=not automatic),
            Emitted("invoice.paid", invoice, from_request=not automatic),
            Emitted("invoice.payment_succeeded", invoice, from_request=not automatic),
            Emitted("invoice_payment.paid", so.invoice_payment(invoice), from_request=not automatic)]


def invoice_paid(objs: AccountObjects, opts: TriggerOptions, now: int) -> list[Emitted]:
    """A subscription renews: the next period starts and its invoice is paid."""
    subscription = _subscription(objs, opts)
    if subscription["status"] == "canceled":
        raise TriggerError(f"subscription {subscription['id']} is canceled: it renews no more")
    if subscription["pause_collection"]:
        raise TriggerError(f"collection of {subscription['id']} is paused: resume it first "
                           "(trigger customer.subscription.updated --resume)")
    before = copy.deepcopy(subscription)
    invoice_id = so.new_id("in")
    start = subscription["current_period_end"]
    subscription.update(current_period_start=start, current_period_end=start + so.MONTH, latest_invoice=invoice_id)
    customer = objs.customers[subscription["customer"]]
    return ([Emitted("customer.subscription.updated", subscription, before, from_request=False)]
            + _invoice_payment(objs, customer, subscription, invoice_id, "subscription_cycle", now))


def charge_failed(objs: AccountObjects, opts: TriggerOptions, now: int) -> list[Emitted]:
    """A declined card at checkout: a failed charge, and a payment intent waiting for another card."""
    customer, emitted = _customer_for_purchase(objs, opts, now)
    metadata = {"course_id": opts.course}
    charge = so.charge(so.new_id("ch"), customer_=customer, amount=_amount(opts), currency=opts.currency,
                       created=now, payment_intent=so.new_id("pi"), payment_method=so.new_id("pm"),
                       metadata=metadata, failed=True)
    objs.remember("charges", charge)
    intent = so.payment_intent(charge["payment_intent"], charge_=charge, metadata=metadata)
    return emitted + [Emitted("charge.failed", charge), Emitted("payment_intent.payment_failed", intent)]


# --- refunds ----------------------------------------------------------------------------------

def charge_refunded(objs: AccountObjects, opts: TriggerOptions, now: int) -> list[Emitted]:
    """A refund of a charge, whole (default: what is left) or partial (--amount)."""
    charge = objs.find("charges", opts.charge, "--charge", "trigger checkout.session.completed first")
    if charge["status"] != "succeeded":
        raise TriggerError(f"charge {charge['id']} did not succeed: there is nothing to refund")
    left = charge["amount"] - charge["amount_refunded"]
    amount = left if opts.amount is None else opts.amount
    if not 0 < amount <= left:
        raise TriggerError(f"charge {charge['id']} has {left} {charge['currency']} left to refund; "
                           f"--amount must be between 1 and {left}" if left else
                           f"charge {charge['id']} is already refunded in full")
    refund = objs.remember("refunds", so.refund(so.new_id("re"), charge_=charge, amount=amount,
                                                reason=opts.reason, created=now))
    before = copy.deepcopy(charge)
    _set_refunds(charge, [refund] + charge["refunds"]["data"])
    return [Emitted("charge.refunded", charge, before), Emitted("refund.created", refund)]


def refund_failed(objs: AccountObjects, opts: TriggerOptions, now: int) -> list[Emitted]:
    """A refund fails after it succeeded (the card was closed): its amount goes back to the charge."""
    refund = objs.find("refunds", opts.refund, "--refund", "trigger charge.refunded first")
    if refund["status"] in ("failed", "canceled"):
        raise TriggerError(f"refund {refund['id']} is already {refund['status']}")
    before = copy.deepcopy(refund)
    refund.update(status="failed", failure_reason="expired_or_canceled_card",
                  failure_balance_transaction=so.new_id("txn"))
    charge = objs.charges[refund["charge"]]
    _set_refunds(charge, [refund if r["id"] == refund["id"] else r for r in charge["refunds"]["data"]])
    return [Emitted("charge.refund.updated", refund, before, from_request=False),
            Emitted("refund.updated", refund, before, from_request=False),
            Emitted("refund.failed", refund, from_request=False)]


def _set_refunds(charge: dict, refunds: list[dict]) -> None:
    """Stripe's cumulative amount_refunded counts pending and succeeded refunds, not failed ones."""
    charge["refunds"].update(data=copy.deepcopy(refunds), total_count=len(refunds))
    charge["amount_refunded"] = sum(r["amount"] for r in refunds
                                    if r["status"] in ("pending", "requires_action", "succeeded"))
    charge["refunded"] = charge["amount_refunded"] == charge["amount"]


# --- subscriptions ----------------------------------------------------------------------------

def _subscription(objs: AccountObjects, opts: TriggerOptions) -> dict:
    return objs.find("subscriptions", opts.subscription, "--subscription",
                     "trigger checkout.session.completed --mode subscription first")


def subscription_updated(objs: AccountObjects, opts: TriggerOptions, now: int) -> list[Emitted]:
    """Pause or resume collection, cancel at the period's end or take that back."""
    if opts.change not in SUBSCRIPTION_CHANGES:
        raise TriggerError("say what changes: --pause, --resume, --cancel-at-period-end or --reactivate")
    subscription = _subscription(objs, opts)
    if subscription["status"] == "canceled":
        raise TriggerError(f"subscription {subscription['id']} is canceled: it cannot change any more")
    before = copy.deepcopy(subscription)
    if opts.change == "pause":
        subscription["pause_collection"] = {"behavior": opts.behavior, "resumes_at": opts.resumes_at}
    elif opts.change == "resume":
        if not subscription["pause_collection"]:
            raise TriggerError(f"collection of {subscription['id']} is not paused (pause it with --pause)")
        subscription["pause_collection"] = None
    elif opts.change == "cancel-at-period-end":
        subscription.update(cancel_at_period_end=True, cancel_at=subscription["current_period_end"], canceled_at=now)
        _cancellation_reason(subscription, "cancellation_requested")
    else:
        subscription.update(cancel_at_period_end=False, cancel_at=None, canceled_at=None)
        _cancellation_reason(subscription, None)
    if subscription == before:
        raise TriggerError(f"subscription {subscription['id']} is already so: nothing changes")
    return [Emitted("customer.subscription.updated", subscription, before)]


def subscription_deleted(objs: AccountObjects, opts: TriggerOptions, now: int) -> list[Emitted]:
    """The subscription is canceled now (by hand, or when a cancellation at period end comes due)."""
    subscription = _subscription(objs, opts)
    if subscription["status"] == "canceled":
        raise TriggerError(f"subscription {subscription['id']} is already canceled")
    subscription.update(status="canceled", ended_at=now, canceled_at=subscription["canceled_at"] or now)
    _cancellation_reason(subscription, "cancellation_requested")
    return [Emitted("customer.subscription.deleted", subscription)]


def _cancellation_reason(subscription: dict, reason: str | None) -> None:
    subscription["cancellation_details"] = {**subscription["cancellation_details"], "reason": reason}


def subscription_status(new_status: str, event_type: str, allowed_from: str) -> Callable:
    """`status: paused` (a trial ended without a payment method) and back to active."""

    def change(objs: AccountObjects, opts: TriggerOptions, now: int) -> list[Emitted]:
        subscription = _subscription(objs, opts)
        if subscription["status"] != allowed_from:
            raise TriggerError(f"subscription {subscription['id']} is {subscription['status']}, not {allowed_from}")
        before = copy.deepcopy(subscription)
        subscription["status"] = new_status
        return [Emitted("customer.subscription.updated", subscription, before, from_request=False),
                Emitted(event_type, subscription, from_request=False)]

    change.__doc__ = f"The subscription's status becomes {new_status}."
    return change


# --- customers --------------------------------------------------------------------------------

def _customer(objs: AccountObjects, opts: TriggerOptions) -> dict:
    return objs.find("customers", opts.customer, "--customer", "trigger checkout.session.completed first")


def customer_updated(objs: AccountObjects, opts: TriggerOptions, now: int) -> list[Emitted]:
    """The customer's name or email changes in Stripe."""
    if not (opts.name or opts.email):
        raise TriggerError("say what changes: --name and/or --email")
    customer = _customer(objs, opts)
    before = copy.deepcopy(customer)
    customer.update({k: v for k, v in (("name", opts.name), ("email", opts.email)) if v})
    return [Emitted("customer.updated", customer, before)]


def customer_deleted(objs: AccountObjects, opts: TriggerOptions, now: int) -> list[Emitted]:
    """The customer is deleted in Stripe (the event carries its last state)."""
    customer = _customer(objs, opts)
    return [Emitted("customer.deleted", customer)]


SCENARIOS: dict[str, Callable[[AccountObjects, TriggerOptions, int], list[Emitted]]] = {
    "checkout.session.completed": checkout_completed,
    "charge.failed": charge_failed,
    "invoice.paid": invoice_paid,
    "charge.refunded": charge_refunded,
    "refund.failed": refund_failed,
    "customer.subscription.updated": subscription_updated,
    "customer.subscription.deleted": subscription_deleted,
    "customer.subscription.paused": subscription_status("paused", "customer.subscription.paused", "active"),
    "customer.subscription.resumed": subscription_status("active", "customer.subscription.resumed", "paused"),
    "customer.updated": customer_updated,
    "customer.deleted": customer_deleted,
}
