"""Customer histories as Stripe really produces them, for the shuffled-history tests.

Each scenario builds, for one API version, the events Stripe sends (type, object, `created`), the
objects' final states (what the Stripe API answers when a worker asks) and the profile they must end in
(`Expected`). Ids carry a tag, so many copies of a scenario (one per delivery order) can share one
database. Objects come from tests/stripe_events.py, which starts from real payloads.

What Stripe sends, per scenario (event names as in Stripe's event types list):
- delayed payment methods: an ACH debit (`us_bank_account`) is a Checkout Session completed `unpaid`,
  `payment_intent.processing` and `charge.pending`, then days later `charge.succeeded` +
  `payment_intent.succeeded` + `checkout.session.async_payment_succeeded`, or `charge.failed` +
  `payment_intent.payment_failed` + `checkout.session.async_payment_failed`. A konbini voucher (JPY, a
  zero-decimal currency) has no charge until it is paid; when it expires unpaid Stripe sends
  `payment_intent.payment_failed` (no charge) and `async_payment_failed`.
- trials: `customer.subscription.created` `trialing` with a zero-amount `invoice.paid`, then at the trial's
  end the first real invoice is paid (subscription `active`) or fails (`invoice.payment_failed`,
  `past_due`).
- failed renewals: `invoice.payment_failed` + `charge.failed` + `payment_intent.payment_failed`, the
  subscription `past_due`; each retry is a new charge on the same payment intent; recovered
  (`invoice.paid`, `active`; sometimes refunded at once), or `unpaid`, or left `past_due`.
- refunds: `pending` then `succeeded`; `succeeded` then `failed`; `requires_action` then `canceled` or
  `succeeded`; a refund made after the customer was deleted in Stripe.
- disputes (`charge.dispute.*`): stored in the ledger, changing no payment.
- bursts: several events about one object within one second.
Basil invoices carry neither `charge`, `payment_intent` nor `subscription`, and their `payments` is an
includable field that webhooks leave out: `invoice_payment.paid` (and, for a failed attempt, Stripe's
`GET /v1/invoice_payments?invoice=`) names the payment intent.
"""
from __future__ import annotations

import copy
import random
import re
from dataclasses import dataclass, field

from tests.fake_stripe.server import KINDS
from tests.stripe_events import (
    BASIL,
    DAY,
    T0,
    charge,
    checkout_session,
    customer,
    deleted_customer,
    dispute,
    invoice,
    invoice_payment,
    iso,
    payment_intent,
    refund,
    subscription,
)
from tests.support import at_least

PRICE = 4900


class Ids:
    """Stripe-looking ids unique to one copy of a scenario: ids("ch1b") → "ch_<tag>1b", ids("cus") → "cus_<tag>x"."""

    def __init__(self, tag: str):
        self.tag = tag

    def __call__(self, name: str) -> str:
        prefix, suffix = re.match(r"([a-z]+?)(\d\w*)?$", name).groups()
        return f"{PREFIXES.get(prefix, prefix)}_{self.tag}{suffix or 'x'}"


PREFIXES = {"cs": "cs_test"}


@dataclass
class Pay:
    """A payment as the profile must show it."""
    pi: str | None
    amount: int
    status: str
    course: str | None
    invoice: str | None = None
    sub: str | None = None
    currency: str = "usd"
    refunds: dict = field(default_factory=dict)  # re_id -> (amount, status)

    @property
    def refunded(self) -> int:
        return sum(a for a, s in self.refunds.values() if s in ("pending", "requires_action", "succeeded"))


@dataclass
class Expected:
    customer: tuple  # (name, email, deleted_in_stripe)
    payments: dict = field(default_factory=dict)  # ch_id -> Pay
    subscriptions: dict = field(default_factory=dict)  # sub_id -> (course, status[, flags]); flags: _sub_flags()
    enrollments: list = field(default_factory=list)  # courses with active access

    def view(self) -> dict:
        return {
            "customer": self.customer,
            "payments": {ch: {"pi": p.pi, "invoice": p.invoice, "sub": p.sub, "course": p.course, "amount": p.amount,
                              "currency": p.currency, "amount_refunded": p.refunded, "status": p.status,
                              "refunds": dict(p.refunds)} for ch, p in self.payments.items()},
            "subscriptions": {sub: (s[0], s[1], s[2] if len(s) > 2 else _sub_flags())
                              for sub, s in self.subscriptions.items()},
            "enrollments": sorted(self.enrollments),
        }


def view_of(profile: dict) -> dict:
    """A profile (GET /stripe-customers/…) in Expected.view()'s shape."""
    return {
        "customer": (profile["name"], profile["email"], profile["deleted_in_stripe"]),
        "payments": {p["stripe_charge_id"]: {
            "pi": p["stripe_payment_intent_id"], "invoice": p["stripe_invoice_id"], "sub": p["stripe_subscription_id"],
            "course": p["course_id"], "amount": p["amount"], "currency": p["currency"],
            "amount_refunded": p["amount_refunded"], "status": p["status"],
            "refunds": {r["stripe_refund_id"]: (r["amount"], r["status"]) for r in p["refunds"]}}
            for p in profile["payments"]},
        "subscriptions": {s["stripe_subscription_id"]: (s["course_id"], s["status"], {
            k: s[k] for k in ("pause_collection", "cancel_at_period_end", "cancel_at")}) for s in profile["subscriptions"]},
        "enrollments": sorted(e["course_id"] for e in profile["enrollments"] if e["access"] == "active"),
    }


@dataclass
class Story:
    cus: str
    events: list  # (type, object, created)
    finals: list  # objects as the Stripe API shows them at the end
    expected: Expected


class Builder:
    """Shared pieces of the scenarios for one copy (ids) and one API version."""

    def __init__(self, ids: Ids, version: str):
        self.ids, self.v = ids, version
        self.cus = ids("cus")
        self.name, self.email = f"Buyer {ids.tag}", f"{ids.tag.lower()}@example.com"
        self.events: list = []
        self.finals: dict = {}

    @property
    def basil(self) -> bool:
        return at_least(self.v, BASIL)

    def at(self, created: int, *pairs) -> None:
        """Events Stripe sends at this second (type, object) and, for each object, its latest state."""
        for type_, obj in pairs:
            self.events.append((type_, copy.deepcopy(obj), created))
            if not type_.startswith("customer.") or obj.get("object") == "subscription":
                self.final(obj)

    def final(self, obj: dict) -> None:
        if obj["object"] in KINDS.values():  # what the fake API can answer (disputes are never asked for)
            self.finals[(obj["object"], obj["id"])] = copy.deepcopy(obj)

    def begin(self) -> None:
        """Checkout creates the customer first."""
        self.at(T0, ("customer.created", self.customer()))

    def story(self, expected: Expected) -> Story:
        return Story(self.cus, self.events, list(self.finals.values()), expected)

    # --- objects ----------------------------------------------------------------------------------

    def customer(self, **changes):
        return customer(self.cus, email=changes.get("email", self.email), name=changes.get("name", self.name),
                        created=T0 - DAY)

    def charge(self, key: str, amount: int = PRICE, *, created: int = T0, pi: str | None = None,
               inv: str | None = None, **kw):
        return charge(self.ids(key), customer=self.cus, amount=amount, created=created, payment_intent=pi,
                      invoice=inv, api_version=self.v, **kw)

    def intent(self, key: str, ch: dict | None, amount: int = PRICE, *, created: int = T0, **kw):
        return payment_intent(self.ids(key), customer=self.cus, amount=amount, latest_charge=ch, created=created,
                              api_version=self.v, **kw)

    def sub(self, status: str, course: str, **kw):
        return subscription(self.ids("sub"), customer=self.cus, created=T0, status=status,
                            metadata={"course_id": course}, current_period_start=T0,
                            current_period_end=T0 + 30 * DAY, api_version=self.v, **kw)

    def invoice(self, key: str, amount: int, course: str, *, created: int, ch: str | None = None,
                pi: str | None = None, status: str = "paid", reason: str = "subscription_cycle", attempts: int = 1):
        return self._billed_to_customer(invoice(self.ids(key), customer=self.cus, subscription=self.ids("sub"),
                       amount_paid=amount if status == "paid" else 0, amount_due=amount, charge=ch, payment_intent=pi,
                       created=created, subscription_metadata={"course_id": course}, billing_reason=reason,
                       api_version=self.v, status=status, attempt_count=attempts, include_payments=False))

    def _billed_to_customer(self, inv: dict) -> dict:
        inv.update(customer_email=self.email, customer_name=self.name)
        return inv

    def invoice_paid(self, inv: dict, pi: str, created: int) -> None:
        """invoice.paid and .payment_succeeded; in basil also invoice_payment.paid (which names the intent)."""
        self.at(created, ("invoice.paid", inv), ("invoice.payment_succeeded", inv))
        paid = invoice_payment(inv["id"], {"type": "payment_intent", "payment_intent": pi}, amount=inv["amount_paid"],
                               created=created)
        if self.basil:
            self.at(created, ("invoice_payment.paid", paid))
        self.final(paid)

    def invoice_failed(self, inv: dict, pi: str, created: int) -> None:
        self.at(created, ("invoice.payment_failed", inv))
        self.final(invoice_payment(inv["id"], {"type": "payment_intent", "payment_intent": pi},
                                   amount=inv["amount_due"], created=created, paid=False))

    def session(self, amount: int, course: str | None, *, pi: str | None = None, status: str = "paid",
                mode: str = "payment", inv: str | None = None, currency: str = "usd", created: int = T0):
        return checkout_session(self.ids("cs"), customer=self.cus, email=self.email, name=self.name,
                                amount_total=amount, mode=mode, payment_intent=pi,
                                subscription=self.ids("sub") if mode == "subscription" else None, invoice=inv,
                                metadata={"course_id": course} if course else {}, created=created,
                                currency=currency, payment_status=status)

    def card_purchase(self, course: str, amount: int = PRICE, created: int = T0) -> tuple[dict, dict]:
        """A one-off Checkout purchase by card: session, charge, payment intent, all in one second."""
        ch = self.charge("ch1", amount, created=created, pi=self.ids("pi1"))
        pi = self.intent("pi1", ch, amount, created=created)
        self.at(created, ("customer.created", self.customer()), ("charge.succeeded", ch),
                ("payment_intent.succeeded", pi),
                ("checkout.session.completed", self.session(amount, course, pi=pi["id"], created=created)))
        return ch, pi

    def subscribed(self, course: str) -> tuple[dict, dict]:
        """A subscription bought through Checkout and paid by card (the first invoice, in1)."""
        self.begin()
        sub = self.sub("active", course)
        ch0 = self.charge("ch0", pi=self.ids("pi0"), inv=self.ids("in1"))
        pi0 = self.intent("pi0", ch0, invoice=self.ids("in1"))
        in1 = self.invoice("in1", PRICE, course, created=T0, ch=ch0["id"], pi=pi0["id"], reason="subscription_create")
        self.at(T0, ("customer.subscription.created", sub), ("charge.succeeded", ch0),
                ("payment_intent.succeeded", pi0))
        self.invoice_paid(in1, pi0["id"], T0)
        self.at(T0, ("checkout.session.completed", self.session(PRICE, None, mode="subscription", inv=in1["id"])))
        return sub, ch0


# --- the scenarios -------------------------------------------------------------------------------

def ach_settles(b: Builder) -> Story:
    course = "course_ach"
    t_settle = T0 + 4 * DAY
    pi_id, amount = b.ids("pi1"), 19900
    pending = b.charge("ch1", amount, pi=pi_id, status="pending", payment_method_type="us_bank_account")
    settled = b.charge("ch1", amount, pi=pi_id, payment_method_type="us_bank_account")
    b.begin()
    b.at(T0, ("checkout.session.completed", b.session(amount, course, pi=pi_id, status="unpaid")),
         ("payment_intent.processing", b.intent("pi1", pending, amount, status="processing",
                                                payment_method_type="us_bank_account")),
         ("charge.pending", pending))
    b.at(t_settle, ("charge.succeeded", settled),
         ("payment_intent.succeeded", b.intent("pi1", settled, amount, payment_method_type="us_bank_account")),
         ("checkout.session.async_payment_succeeded", b.session(amount, course, pi=pi_id)))
    b.final(b.customer())
    return b.story(Expected((b.name, b.email, False), {settled["id"]: Pay(pi_id, amount, "succeeded", course)},
                            enrollments=[course]))


def ach_fails(b: Builder) -> Story:
    """The course is only in the payment intent's metadata."""
    course, md = "course_ach_fail", {"course_id": "course_ach_fail"}
    pi_id, amount = b.ids("pi1"), 19900
    pending = b.charge("ch1", amount, pi=pi_id, status="pending", payment_method_type="us_bank_account")
    failed = b.charge("ch1", amount, pi=pi_id, status="failed", payment_method_type="us_bank_account")
    b.begin()
    b.at(T0, ("checkout.session.completed", b.session(amount, None, pi=pi_id, status="unpaid")),
         ("payment_intent.processing", b.intent("pi1", pending, amount, status="processing", metadata=md)),
         ("charge.pending", pending))
    b.at(T0 + 4 * DAY, ("charge.failed", failed),
         ("payment_intent.payment_failed", b.intent("pi1", failed, amount, status="requires_payment_method",
                                                    metadata=md)),
         ("checkout.session.async_payment_failed", b.session(amount, None, pi=pi_id, status="unpaid")))
    b.final(b.customer())
    return b.story(Expected((b.name, b.email, False), {failed["id"]: Pay(pi_id, amount, "failed", course)}))


def ach_processing(b: Builder) -> Story:
    course, md = "course_ach_wait", {"course_id": "course_ach_wait"}
    pi_id, amount = b.ids("pi1"), 19900
    pending = b.charge("ch1", amount, pi=pi_id, status="pending", payment_method_type="us_bank_account")
    b.begin()
    b.at(T0, ("checkout.session.completed", b.session(amount, None, pi=pi_id, status="unpaid")),
         ("payment_intent.processing", b.intent("pi1", pending, amount, status="processing", metadata=md)),
         ("charge.pending", pending))
    b.final(b.customer())
    return b.story(Expected((b.name, b.email, False), {pending["id"]: Pay(pi_id, amount, "pending", course)}))


def _voucher(b: Builder, status: str) -> dict:
    intent = b.intent("pi1", None, 5000, currency="jpy", status=status, payment_method_type="konbini")
    intent["next_action"] = ({"type": "konbini_display_details", "konbini_display_details": {
        "expires_at": T0 + 3 * DAY, "hosted_voucher_url": "https://payments.stripe.com/konbini/voucher/test"}}
        if status == "requires_action" else None)
    return intent


def konbini_paid(b: Builder) -> Story:
    course = "course_konbini"
    pi_id = b.ids("pi1")
    paid = b.charge("ch1", 5000, created=T0 + 2 * DAY, pi=pi_id, currency="jpy", payment_method_type="konbini")
    b.begin()
    b.at(T0, ("checkout.session.completed", b.session(5000, course, pi=pi_id, status="unpaid", currency="jpy")),
         ("payment_intent.requires_action", _voucher(b, "requires_action")))
    b.at(T0 + 2 * DAY, ("charge.succeeded", paid),
         ("payment_intent.succeeded", b.intent("pi1", paid, 5000, currency="jpy", payment_method_type="konbini")),
         ("checkout.session.async_payment_succeeded", b.session(5000, course, pi=pi_id, currency="jpy")))
    b.final(b.customer())
    return b.story(Expected((b.name, b.email, False), {paid["id"]: Pay(pi_id, 5000, "succeeded", course,
                                                                        currency="jpy")}, enrollments=[course]))


def konbini_expired(b: Builder) -> Story:
    """No charge ever exists: no payment, no access (the customer is recorded from the session)."""
    course = "course_konbini_late"
    pi_id = b.ids("pi1")
    expired = _voucher(b, "requires_payment_method")
    expired["last_payment_error"] = {"code": "payment_intent_payment_attempt_expired", "type": "invalid_request_error",
                                     "message": "The konbini voucher expired before it was paid.", "charge": None}
    b.begin()
    b.at(T0, ("checkout.session.completed", b.session(5000, course, pi=pi_id, status="unpaid", currency="jpy")),
         ("payment_intent.requires_action", _voucher(b, "requires_action")))
    b.at(T0 + 3 * DAY, ("payment_intent.payment_failed", expired),
         ("checkout.session.async_payment_failed", b.session(5000, course, pi=pi_id, status="unpaid",
                                                             currency="jpy")))
    b.final(b.customer())
    return b.story(Expected((b.name, b.email, False)))


def _trial_start(b: Builder, course: str) -> None:
    b.begin()
    trial = b.sub("trialing", course)
    in0 = b.invoice("in0", 0, course, created=T0, reason="subscription_create")
    b.at(T0, ("customer.subscription.created", trial), ("invoice.paid", in0),
         ("checkout.session.completed", b.session(0, None, mode="subscription", inv=in0["id"],
                                                  status="no_payment_required")))
    b.at(T0 + 11 * DAY, ("customer.subscription.trial_will_end", trial))
    b.final(b.customer())


def trial_converts(b: Builder) -> Story:
    course = "course_trial"
    _trial_start(b, course)
    t1 = T0 + 14 * DAY
    pi_id, in_id = b.ids("pi1"), b.ids("in1")
    ch = b.charge("ch1", created=t1, pi=pi_id, inv=in_id)
    b.at(t1, ("customer.subscription.updated", b.sub("active", course)), ("charge.succeeded", ch),
         ("payment_intent.succeeded", b.intent("pi1", ch, created=t1, invoice=in_id)))
    b.invoice_paid(b.invoice("in1", PRICE, course, created=t1, ch=ch["id"], pi=pi_id), pi_id, t1)
    return b.story(Expected((b.name, b.email, False),
                            {ch["id"]: Pay(pi_id, PRICE, "succeeded", course, in_id, b.ids("sub"))},
                            {b.ids("sub"): (course, "active")}, [course]))


def trial_first_charge_fails(b: Builder) -> Story:
    """The trial gave access; the failed first charge does not take it away (only an admin revokes)."""
    course = "course_trial_fail"
    _trial_start(b, course)
    t1 = T0 + 14 * DAY
    pi_id, in_id = b.ids("pi1"), b.ids("in1")
    failed = b.charge("ch1", created=t1, pi=pi_id, inv=in_id, status="failed")
    b.invoice_failed(b.invoice("in1", PRICE, course, created=t1, ch=failed["id"], pi=pi_id, status="open"), pi_id, t1)
    b.at(t1, ("charge.failed", failed),
         ("payment_intent.payment_failed", b.intent("pi1", failed, created=t1, status="requires_payment_method",
                                                    invoice=in_id)),
         ("customer.subscription.updated", b.sub("past_due", course)))
    return b.story(Expected((b.name, b.email, False),
                            {failed["id"]: Pay(pi_id, PRICE, "failed", course, in_id, b.ids("sub"))},
                            {b.ids("sub"): (course, "past_due")}, [course]))


def _failed_renewal(b: Builder, course: str, t1: int, charges: list[str]) -> list[dict]:
    """Renewal invoice in2 on payment intent pi2: each key in `charges` is one failed attempt, a day apart."""
    pi_id, in_id = b.ids("pi2"), b.ids("in2")
    failed = []
    for n, key in enumerate(charges):
        at = t1 + n * DAY
        ch = b.charge(key, created=at, pi=pi_id, inv=in_id, status="failed")
        failed.append(ch)
        b.invoice_failed(b.invoice("in2", PRICE, course, created=at, ch=ch["id"], pi=pi_id, status="open",
                                   attempts=n + 1), pi_id, at)
        b.at(at, ("charge.failed", ch),
             ("payment_intent.payment_failed", b.intent("pi2", ch, created=t1, status="requires_payment_method",
                                                        invoice=in_id, charges=failed)))
        if n == 0:
            b.at(at, ("customer.subscription.updated", b.sub("past_due", course)))
    return failed


def _renewal_expected(b: Builder, course: str, ch0: dict, failed: list[dict], status: str, **more) -> Expected:
    sub_id = b.ids("sub")
    pays = {ch0["id"]: Pay(b.ids("pi0"), PRICE, "succeeded", course, b.ids("in1"), sub_id)}
    pays.update({ch["id"]: Pay(b.ids("pi2"), PRICE, "failed", course, b.ids("in2"), sub_id) for ch in failed})
    pays.update(more)
    return Expected((b.name, b.email, False), pays, {sub_id: (course, status)}, [course])


def _renewal_paid(b: Builder, course: str, t1: int, at: int, failed: list[dict]) -> dict:
    """The renewal invoice in2 (first attempted at t1, then `failed`) paid at `at` by charge ch2; active again."""
    pi_id, in_id = b.ids("pi2"), b.ids("in2")
    ch2 = b.charge("ch2", created=at, pi=pi_id, inv=in_id)
    b.at(at, ("charge.succeeded", ch2),
         ("payment_intent.succeeded", b.intent("pi2", ch2, created=t1, invoice=in_id, charges=failed + [ch2])))
    b.invoice_paid(b.invoice("in2", PRICE, course, created=at, ch=ch2["id"], pi=pi_id, attempts=len(failed) + 1),
                   pi_id, at)
    b.at(at, ("customer.subscription.updated", b.sub("active", course)))
    return ch2


def renewal_recovered(b: Builder, *, refund_at_once: bool = False) -> Story:
    course = "course_renewal"
    _, ch0 = b.subscribed(course)
    b.final(b.customer())
    t1 = T0 + 30 * DAY
    failed = _failed_renewal(b, course, t1, ["ch1"])
    t2 = t1 + 3 * DAY
    pi_id, in_id = b.ids("pi2"), b.ids("in2")
    ch2 = _renewal_paid(b, course, t1, t2, failed)
    refunds = {}
    if refund_at_once:
        re = refund(b.ids("re1"), charge=ch2["id"], amount=PRICE, created=t2 + 40, payment_intent=pi_id,
                    reason="requested_by_customer")
        b.at(t2 + 40, ("refund.created", re), ("charge.refunded", b.charge("ch2", created=t2, pi=pi_id, inv=in_id,
                                                                          refunds=[re])))
        refunds = {re["id"]: (PRICE, "succeeded")}
    status = "refunded" if refund_at_once else "succeeded"
    return b.story(_renewal_expected(b, course, ch0, failed, "active", **{
        ch2["id"]: Pay(pi_id, PRICE, status, course, in_id, b.ids("sub"), refunds=refunds)}))


def renewal_recovered_and_refunded(b: Builder) -> Story:
    return renewal_recovered(b, refund_at_once=True)


def renewal_unpaid(b: Builder, *, paid_later: bool = False) -> Story:
    """past_due, then unpaid; `paid_later`: then the customer pays the open invoice by hand, active again."""
    course = "course_unpaid"
    _, ch0 = b.subscribed(course)
    b.final(b.customer())
    t1 = T0 + 30 * DAY
    failed = _failed_renewal(b, course, t1, ["ch1", "ch1b"])
    b.at(t1 + 7 * DAY, ("customer.subscription.updated", b.sub("unpaid", course)))
    if not paid_later:
        return b.story(_renewal_expected(b, course, ch0, failed, "unpaid"))
    ch2 = _renewal_paid(b, course, t1, t1 + 10 * DAY, failed)
    return b.story(_renewal_expected(b, course, ch0, failed, "active", **{
        ch2["id"]: Pay(b.ids("pi2"), PRICE, "succeeded", course, b.ids("in2"), b.ids("sub"))}))


def renewal_left_past_due(b: Builder) -> Story:
    course = "course_past_due"
    _, ch0 = b.subscribed(course)
    b.final(b.customer())
    failed = _failed_renewal(b, course, T0 + 30 * DAY, ["ch1"])
    return b.story(_renewal_expected(b, course, ch0, failed, "past_due"))


def _refund_events(b: Builder, ch_key: str, pi_id: str, amount: int, steps: list[tuple[int, str, list[str]]],
                   *, key: str, settled: list[dict]) -> dict:
    """One refund's lifecycle: at each (second, status, event types) Stripe sends those events; the charge
    (for charge.refunded) lists the refunds `settled` so far plus this one."""
    re = None
    for created, status, types in steps:
        re = refund(b.ids(key), charge=b.ids(ch_key), amount=amount, created=steps[0][0], payment_intent=pi_id,
                    status=status)
        ch = b.charge(ch_key, 10000, pi=pi_id, refunds=settled + [re])
        b.at(created, *[(t, ch if t.startswith("charge.refunded") else re) for t in types])
        b.final(ch)
    return re


CREATED, UPDATED = ["refund.created", "charge.refunded"], ["refund.updated", "charge.refund.updated"]


def _two_refunds(b: Builder, course: str, first: tuple, second: tuple) -> Story:
    """A 10000 card purchase, then two refunds, each (key, amount, [(days after purchase, status, event
    types)…]); the second is made once the first has settled."""
    ch, pi = b.card_purchase(course, 10000)
    settled, refunds = [], {}
    for key, amount, steps in (first, second):
        re = _refund_events(b, "ch1", pi["id"], amount, [(T0 + days * DAY, status, types)
                                                          for days, status, types in steps],
                            key=key, settled=settled)
        settled.append(re)
        refunds[re["id"]] = (amount, re["status"])
    b.final(b.customer())
    return b.story(Expected((b.name, b.email, False), {ch["id"]: Pay(pi["id"], 10000, "partially_refunded", course,
                                                                      refunds=refunds)}, enrollments=[course]))


def refunds_pending_then_succeeded_and_succeeded_then_failed(b: Builder) -> Story:
    return _two_refunds(b, "course_refunds",
                        ("re1", 2000, [(1, "pending", CREATED), (3, "succeeded", UPDATED)]),
                        ("re2", 3000, [(5, "succeeded", CREATED), (6, "failed", ["refund.failed"] + UPDATED)]))


def refunds_requiring_action(b: Builder) -> Story:
    return _two_refunds(b, "course_refunds_action",
                        ("re3", 1000, [(1, "requires_action", CREATED), (2, "canceled", UPDATED)]),
                        ("re4", 1500, [(5, "requires_action", CREATED), (6, "succeeded", UPDATED)]))


def refund_after_customer_deleted(b: Builder) -> Story:
    course = "course_deleted_buyer"
    ch, pi = b.card_purchase(course)
    gone = deleted_customer(b.cus)
    b.at(T0 + DAY, ("customer.deleted", gone))
    b.final(gone)
    re = refund(b.ids("re1"), charge=ch["id"], amount=PRICE, created=T0 + 2 * DAY, payment_intent=pi["id"])
    b.at(T0 + 2 * DAY, ("refund.created", re), ("charge.refunded", b.charge("ch1", pi=pi["id"], refunds=[re])))
    return b.story(Expected((b.name, b.email, True), {ch["id"]: Pay(pi["id"], PRICE, "refunded", course,
                                                                     refunds={re["id"]: (PRICE, "succeeded")})},
                            enrollments=[course]))


def _dispute(b: Builder, outcome: str) -> Story:
    course = f"course_dispute_{outcome}"
    ch, pi = b.card_purchase(course)
    dp = b.ids("dp1")
    t1 = T0 + 3 * DAY

    def dp_at(status):
        return dispute(dp, charge=ch["id"], amount=PRICE, payment_intent=pi["id"], status=status, created=t1)

    b.at(t1, ("charge.dispute.created", dp_at("needs_response")), ("charge.dispute.funds_withdrawn", dp_at(
        "needs_response")), ("charge.updated", b.charge("ch1", pi=pi["id"], disputed=True)))
    b.at(t1 + 2 * DAY, ("charge.dispute.updated", dp_at("under_review")))
    closing = [("charge.dispute.closed", dp_at(outcome))]
    if outcome == "won":
        closing.append(("charge.dispute.funds_reinstated", dp_at("won")))
    b.at(t1 + 20 * DAY, *closing)
    b.final(b.customer())
    return b.story(Expected((b.name, b.email, False), {ch["id"]: Pay(pi["id"], PRICE, "succeeded", course)},
                            enrollments=[course]))


def dispute_won(b: Builder) -> Story:
    return _dispute(b, "won")


def dispute_lost(b: Builder) -> Story:
    return _dispute(b, "lost")


def bursts_within_one_second(b: Builder) -> Story:
    """Several states of one object in one second: a customer renamed twice, a subscription incomplete then
    active, a refund pending then succeeded, collection paused then resumed."""
    course = "course_burst"
    renamed = b.customer(name=f"Renamed {b.ids.tag}")
    b.at(T0, ("customer.created", b.customer()), ("customer.updated", renamed))
    b.final(renamed)
    sub_incomplete, sub_active = b.sub("incomplete", course), b.sub("active", course)
    pi_id, in_id = b.ids("pi1"), b.ids("in1")
    ch = b.charge("ch1", pi=pi_id, inv=in_id, status="pending")
    ok = b.charge("ch1", pi=pi_id, inv=in_id)
    b.at(T0, ("customer.subscription.created", sub_incomplete), ("charge.pending", ch), ("charge.succeeded", ok),
         ("charge.updated", ok), ("payment_intent.succeeded", b.intent("pi1", ok, invoice=in_id)),
         ("customer.subscription.updated", sub_active))
    b.invoice_paid(b.invoice("in1", PRICE, course, created=T0, ch=ok["id"], pi=pi_id, reason="subscription_create"),
                   pi_id, T0)
    t1 = T0 + DAY
    pending = refund(b.ids("re1"), charge=ok["id"], amount=900, created=t1, payment_intent=pi_id, status="pending")
    done = refund(b.ids("re1"), charge=ok["id"], amount=900, created=t1, payment_intent=pi_id)
    b.at(t1, ("refund.created", pending), ("charge.refunded", b.charge("ch1", pi=pi_id, inv=in_id, refunds=[pending])),
         ("refund.updated", done), ("charge.refund.updated", done))
    b.final(b.charge("ch1", pi=pi_id, inv=in_id, refunds=[done]))
    t2 = T0 + 2 * DAY
    b.at(t2, ("customer.subscription.updated", b.sub("active", course, pause_collection={"behavior": "void",
                                                                                           "resumes_at": None})),
         ("customer.subscription.updated", sub_active))
    b.final(sub_active)
    return b.story(Expected((renamed["name"], b.email, False), {ok["id"]: Pay(
        pi_id, PRICE, "partially_refunded", course, in_id, b.ids("sub"), refunds={done["id"]: (900, "succeeded")})},
        {b.ids("sub"): (course, "active")}, [course]))


SCENARIOS = {f.__name__: f for f in (
    ach_settles, ach_fails, ach_processing, konbini_paid, konbini_expired, trial_converts, trial_first_charge_fails,
    renewal_recovered, renewal_recovered_and_refunded, renewal_unpaid, renewal_left_past_due,
    refunds_pending_then_succeeded_and_succeeded_then_failed, refunds_requiring_action, refund_after_customer_deleted,
    dispute_won, dispute_lost, bursts_within_one_second,
)}


# --- more histories: refunds up to full, subscription lifecycles, a course change -------------------

def refunds_up_to_full_then_one_fails(b: Builder) -> Story:
    """Two partial refunds add up to the whole charge (refunded), then the second fails: the payment is
    partially refunded again, by the first refund only."""
    course = "course_refund_full"
    ch, pi = b.card_purchase(course, 10000)
    re1 = refund(b.ids("re1"), charge=ch["id"], amount=4000, created=T0 + DAY, payment_intent=pi["id"])
    re2 = refund(b.ids("re2"), charge=ch["id"], amount=6000, created=T0 + 2 * DAY, payment_intent=pi["id"])
    re2_failed = refund(b.ids("re2"), charge=ch["id"], amount=6000, created=T0 + 2 * DAY, payment_intent=pi["id"],
                        status="failed")
    b.at(T0 + DAY, ("refund.created", re1), ("charge.refunded", b.charge("ch1", 10000, pi=pi["id"], refunds=[re1])))
    b.at(T0 + 2 * DAY, ("refund.created", re2),
         ("charge.refunded", b.charge("ch1", 10000, pi=pi["id"], refunds=[re1, re2])))
    b.at(T0 + 5 * DAY, ("refund.failed", re2_failed), ("refund.updated", re2_failed),
         ("charge.refund.updated", re2_failed))
    b.final(b.charge("ch1", 10000, pi=pi["id"], refunds=[re1, re2_failed]))
    b.final(b.customer())
    return b.story(Expected((b.name, b.email, False), {ch["id"]: Pay(pi["id"], 10000, "partially_refunded", course,
                                                                      refunds={re1["id"]: (4000, "succeeded"),
                                                                               re2["id"]: (6000, "failed")})},
                            enrollments=[course]))


def _sub_flags(pause=None, at_period_end=False, cancel_at=None):
    return {"pause_collection": pause, "cancel_at_period_end": at_period_end, "cancel_at": iso(cancel_at)}


def cancel_scheduled_then_kept(b: Builder) -> Story:
    """Set to cancel at period end, then the customer changes their mind: active, nothing scheduled."""
    course = "course_cancel_kept"
    _, ch0 = b.subscribed(course)
    b.final(b.customer())
    b.at(T0 + 3 * DAY, ("customer.subscription.updated", b.sub("active", course, cancel_at_period_end=True,
                                                                cancel_at=T0 + 30 * DAY, canceled_at=T0 + 3 * DAY)))
    b.at(T0 + 5 * DAY, ("customer.subscription.updated", b.sub("active", course)))
    return b.story(Expected((b.name, b.email, False), {ch0["id"]: Pay(b.ids("pi0"), PRICE, "succeeded", course,
                                                                       b.ids("in1"), b.ids("sub"))},
                            {b.ids("sub"): (course, "active", _sub_flags())}, [course]))


def cancel_at_a_future_date(b: Builder) -> Story:
    """Set to cancel at a date before the period ends, then it ends then (.deleted): canceled, access kept."""
    course = "course_cancel_at"
    _, ch0 = b.subscribed(course)
    b.final(b.customer())
    end = T0 + 20 * DAY
    b.at(T0 + 2 * DAY, ("customer.subscription.updated", b.sub("active", course, cancel_at=end,
                                                                canceled_at=T0 + 2 * DAY)))
    b.at(end, ("customer.subscription.deleted", b.sub("canceled", course, cancel_at=end, canceled_at=T0 + 2 * DAY,
                                                      ended_at=end)))
    return b.story(Expected((b.name, b.email, False), {ch0["id"]: Pay(b.ids("pi0"), PRICE, "succeeded", course,
                                                                       b.ids("in1"), b.ids("sub"))},
                            {b.ids("sub"): (course, "canceled", _sub_flags(cancel_at=end))}, [course]))


def trial_paused_then_resumed(b: Builder) -> Story:
    """The trial ends without a payment method (status `paused`, .paused), then the customer adds one and
    it resumes (.resumed, `active`) with the first invoice paid."""
    course = "course_trial_paused"
    _trial_start(b, course)
    t1, t2 = T0 + 14 * DAY, T0 + 20 * DAY
    paused = b.sub("paused", course)
    b.at(t1, ("customer.subscription.updated", paused), ("customer.subscription.paused", paused))
    pi_id, in_id = b.ids("pi1"), b.ids("in1")
    ch = b.charge("ch1", created=t2, pi=pi_id, inv=in_id)
    active = b.sub("active", course)
    b.at(t2, ("customer.subscription.resumed", active), ("customer.subscription.updated", active),
         ("charge.succeeded", ch), ("payment_intent.succeeded", b.intent("pi1", ch, created=t2, invoice=in_id)))
    b.invoice_paid(b.invoice("in1", PRICE, course, created=t2, ch=ch["id"], pi=pi_id), pi_id, t2)
    return b.story(Expected((b.name, b.email, False),
                            {ch["id"]: Pay(pi_id, PRICE, "succeeded", course, in_id, b.ids("sub"))},
                            {b.ids("sub"): (course, "active", _sub_flags())}, [course]))


def incomplete_then_expired(b: Builder) -> Story:
    """The first payment fails (`incomplete`) and is never made: after 23 hours `incomplete_expired`.
    The failed payment is recorded; no access."""
    course = "course_incomplete"
    b.begin()
    pi_id, in_id = b.ids("pi1"), b.ids("in1")
    failed = b.charge("ch1", pi=pi_id, inv=in_id, status="failed")
    b.at(T0, ("customer.subscription.created", b.sub("incomplete", course)), ("charge.failed", failed),
         ("payment_intent.payment_failed", b.intent("pi1", failed, status="requires_payment_method", invoice=in_id)))
    b.invoice_failed(b.invoice("in1", PRICE, course, created=T0, ch=failed["id"], pi=pi_id, status="open",
                               reason="subscription_create"), pi_id, T0)
    expired = b.sub("incomplete_expired", course, ended_at=T0 + 23 * 3600)
    b.at(T0 + 23 * 3600, ("customer.subscription.updated", expired), ("customer.subscription.deleted", expired))
    b.final(b.customer())
    return b.story(Expected((b.name, b.email, False),
                            {failed["id"]: Pay(pi_id, PRICE, "failed", course, in_id, b.ids("sub"))},
                            {b.ids("sub"): (course, "incomplete_expired")}))


def unpaid_then_paid(b: Builder) -> Story:
    return renewal_unpaid(b, paid_later=True)


def subscription_moves_to_another_course(b: Builder) -> Story:
    """The subscription is moved to another price and course (metadata.course_id B); the next renewal
    pays for B: the first payment stays A's, the renewal is B's, both courses are open."""
    course_a, course_b = "course_move_from", "course_move_to"
    _, ch0 = b.subscribed(course_a)
    b.final(b.customer())
    b.at(T0 + 10 * DAY, ("customer.subscription.updated", b.sub("active", course_b)))
    t1 = T0 + 30 * DAY
    pi_id, in_id = b.ids("pi2"), b.ids("in2")
    ch2 = b.charge("ch2", created=t1, pi=pi_id, inv=in_id)
    b.at(t1, ("charge.succeeded", ch2), ("payment_intent.succeeded", b.intent("pi2", ch2, created=t1, invoice=in_id)))
    b.invoice_paid(b.invoice("in2", PRICE, course_b, created=t1, ch=ch2["id"], pi=pi_id), pi_id, t1)
    sub_id = b.ids("sub")
    return b.story(Expected((b.name, b.email, False), {
        ch0["id"]: Pay(b.ids("pi0"), PRICE, "succeeded", course_a, b.ids("in1"), sub_id),
        ch2["id"]: Pay(pi_id, PRICE, "succeeded", course_b, in_id, sub_id)},
        {sub_id: (course_b, "active")}, [course_a, course_b]))


def customer_details_changed_twice(b: Builder) -> Story:
    """The customer changes email, then name and email again a day later: the later details win."""
    course = "course_renamed"
    b.card_purchase(course)
    first = b.customer(email=f"first.{b.ids.tag.lower()}@example.com")
    last = b.customer(name=f"Later {b.ids.tag}", email=f"later.{b.ids.tag.lower()}@example.com")
    b.at(T0 + DAY, ("customer.updated", first))
    b.at(T0 + 2 * DAY, ("customer.updated", last))
    b.final(last)
    ch_id, pi_id = b.ids("ch1"), b.ids("pi1")
    return b.story(Expected((last["name"], last["email"], False), {ch_id: Pay(pi_id, PRICE, "succeeded", course)},
                            enrollments=[course]))


SCENARIOS.update({f.__name__: f for f in (
    refunds_up_to_full_then_one_fails, cancel_scheduled_then_kept, cancel_at_a_future_date, trial_paused_then_resumed,
    incomplete_then_expired, unpaid_then_paid, subscription_moves_to_another_course, customer_details_changed_twice,
)})


def customer_deleted_with_its_subscription(b: Builder) -> Story:
    """Deleting a customer in Stripe cancels their subscriptions in the same second: the customer stays,
    marked deleted with their details, the subscription is canceled, the access stays."""
    course = "course_customer_gone"
    _, ch0 = b.subscribed(course)
    gone, t1 = deleted_customer(b.cus), T0 + 5 * DAY
    b.at(t1, ("customer.subscription.deleted", b.sub("canceled", course, canceled_at=t1, ended_at=t1)),
         ("customer.deleted", gone))
    b.final(gone)
    return b.story(Expected((b.name, b.email, True), {ch0["id"]: Pay(b.ids("pi0"), PRICE, "succeeded", course,
                                                                      b.ids("in1"), b.ids("sub"))},
                            {b.ids("sub"): (course, "canceled")}, [course]))


def _without_course(inv: dict) -> dict:
    for holder in [inv.get("subscription_details"), (inv.get("parent") or {}).get("subscription_details")] + \
            inv["lines"]["data"]:
        if isinstance(holder, dict):
            holder["metadata"] = {}
    return inv


def course_only_on_the_checkout_session(b: Builder) -> Story:
    """The course is only in the Checkout Session's metadata (not copied to the subscription): the first
    payment, the renewal a month later and the subscription all belong to it."""
    course = "course_on_session"
    b.begin()
    sub = b.sub("active", course)
    sub["metadata"] = {}
    pi0, in1 = b.ids("pi0"), b.ids("in1")
    ch0 = b.charge("ch0", pi=pi0, inv=in1)
    b.at(T0, ("customer.subscription.created", sub), ("charge.succeeded", ch0),
         ("payment_intent.succeeded", b.intent("pi0", ch0, invoice=in1)))
    b.invoice_paid(_without_course(b.invoice("in1", PRICE, course, created=T0, ch=ch0["id"], pi=pi0,
                                             reason="subscription_create")), pi0, T0)
    b.at(T0, ("checkout.session.completed", b.session(PRICE, course, mode="subscription", inv=in1)))
    b.final(b.customer())
    t1 = T0 + 30 * DAY
    pi2, in2 = b.ids("pi2"), b.ids("in2")
    ch2 = b.charge("ch2", created=t1, pi=pi2, inv=in2)
    b.at(t1, ("charge.succeeded", ch2), ("payment_intent.succeeded", b.intent("pi2", ch2, created=t1, invoice=in2)))
    b.invoice_paid(_without_course(b.invoice("in2", PRICE, course, created=t1, ch=ch2["id"], pi=pi2)), pi2, t1)
    sub_id = b.ids("sub")
    return b.story(Expected((b.name, b.email, False), {
        ch0["id"]: Pay(pi0, PRICE, "succeeded", course, in1, sub_id),
        ch2["id"]: Pay(pi2, PRICE, "succeeded", course, in2, sub_id)}, {sub_id: (course, "active")}, [course]))


SCENARIOS.update({f.__name__: f for f in (customer_deleted_with_its_subscription, course_only_on_the_checkout_session)})


def declined_then_paid_at_checkout(b: Builder) -> Story:
    """At Checkout the first card is declined and a second one pays, all in one second: the failed
    attempt and the payment are two payments of one payment intent; only the payment gives access."""
    course = "course_second_card"
    pi_id = b.ids("pi1")
    declined = b.charge("ch1", pi=pi_id, status="failed")
    paid = b.charge("ch2", pi=pi_id)
    b.at(T0, ("customer.created", b.customer()), ("charge.failed", declined),
         ("payment_intent.payment_failed", b.intent("pi1", declined, status="requires_payment_method")),
         ("charge.succeeded", paid), ("payment_intent.succeeded", b.intent("pi1", paid, charges=[declined, paid])),
         ("checkout.session.completed", b.session(PRICE, course, pi=pi_id)))
    b.final(b.customer())
    return b.story(Expected((b.name, b.email, False), {declined["id"]: Pay(pi_id, PRICE, "failed", course),
                                                       paid["id"]: Pay(pi_id, PRICE, "succeeded", course)},
                            enrollments=[course]))


SCENARIOS.update({f.__name__: f for f in (declined_then_paid_at_checkout,)})


def _priced(obj: dict, course: str) -> dict:
    """The course on the price (a price per course), not on the subscription: on its items, or on the
    invoice's lines (their price and plan, before basil)."""
    obj["metadata"] = {}
    for holder in [obj.get("subscription_details"), (obj.get("parent") or {}).get("subscription_details")]:
        if isinstance(holder, dict):
            holder["metadata"] = {}
    for item in (obj.get("items") or obj.get("lines"))["data"]:
        item["metadata"] = {}
        for key in ("price", "plan"):
            if isinstance(item.get(key), dict):
                item[key].update(id=f"price_{course}", metadata={"course_id": course})
        if "pricing" in item:
            item["pricing"]["price_details"]["price"] = f"price_{course}"
    return obj


def _price(b: Builder, course: str) -> None:
    """The price object (what `GET /v1/prices/{id}` answers)."""
    b.final({"id": f"price_{course}", "object": "price", "active": True, "currency": "usd", "unit_amount": PRICE,
             "type": "recurring", "metadata": {"course_id": course}})


def _subscribed_to_a_price(b: Builder, course_a: str, course_b: str) -> tuple[dict, str, str, str]:
    """Checkout for a subscription to course A's price (course B's price exists too); the first invoice paid."""
    b.begin()
    _price(b, course_a), _price(b, course_b)
    pi0, in1, sub_id = b.ids("pi0"), b.ids("in1"), b.ids("sub")
    ch0 = b.charge("ch0", pi=pi0, inv=in1)
    b.at(T0, ("customer.subscription.created", _priced(b.sub("active", course_a), course_a)),
         ("charge.succeeded", ch0), ("payment_intent.succeeded", b.intent("pi0", ch0, invoice=in1)))
    b.invoice_paid(_priced(b.invoice("in1", PRICE, course_a, created=T0, ch=ch0["id"], pi=pi0,
                                     reason="subscription_create"), course_a), pi0, T0)
    b.at(T0, ("checkout.session.completed", b.session(PRICE, None, mode="subscription", inv=in1)))
    b.final(b.customer())
    return ch0, pi0, in1, sub_id


def price_moves_to_another_course(b: Builder) -> Story:
    """The course is on the price; the subscription moves to the price of another course, and the next
    renewal pays for that one."""
    course_a, course_b = "course_price_from", "course_price_to"
    ch0, pi0, in1, sub_id = _subscribed_to_a_price(b, course_a, course_b)
    b.at(T0 + 10 * DAY, ("customer.subscription.updated", _priced(b.sub("active", course_b), course_b)))
    t1 = T0 + 30 * DAY
    pi2, in2 = b.ids("pi2"), b.ids("in2")
    ch2 = b.charge("ch2", created=t1, pi=pi2, inv=in2)
    b.at(t1, ("charge.succeeded", ch2), ("payment_intent.succeeded", b.intent("pi2", ch2, created=t1, invoice=in2)))
    b.invoice_paid(_priced(b.invoice("in2", PRICE, course_b, created=t1, ch=ch2["id"], pi=pi2), course_b), pi2, t1)
    return _moved(b, (ch0, pi0, in1, sub_id), (ch2, PRICE), course_a, course_b)


def _moved(b: Builder, first: tuple, renewal: tuple, course_a: str, course_b: str) -> Story:
    """The profile after a move from course A to B: the first payment A's, the one after B's, both open."""
    (ch0, pi0, in1, sub_id), (ch2, amount) = first, renewal
    return b.story(Expected((b.name, b.email, False), {
        ch0["id"]: Pay(pi0, PRICE, "succeeded", course_a, in1, sub_id),
        ch2["id"]: Pay(ch2["payment_intent"], amount, "succeeded", course_b, b.ids("in2"), sub_id)},
        {sub_id: (course_b, "active")}, [course_a, course_b]))


def price_moves_with_a_proration_invoice(b: Builder) -> Story:
    """The move to the other course's price is invoiced at once (proration): the invoice's first line
    credits the unused time on the old price, the second bills the new one; the payment is for the
    new course."""
    course_a, course_b = "course_prorated_from", "course_prorated_to"
    ch0, pi0, in1, sub_id = _subscribed_to_a_price(b, course_a, course_b)
    t1, amount = T0 + 10 * DAY, PRICE - 1600
    pi2, in2 = b.ids("pi2"), b.ids("in2")
    ch2 = b.charge("ch2", amount, created=t1, pi=pi2, inv=in2)
    inv = _priced(b.invoice("in2", amount, course_b, created=t1, ch=ch2["id"], pi=pi2, reason="subscription_update"),
                  course_b)
    credit = _priced({"lines": {"data": [copy.deepcopy(inv["lines"]["data"][0])]}}, course_a)["lines"]["data"][0]
    credit.update(id=f"il_{b.ids.tag}credit", amount=-1600, proration=True)
    inv["lines"]["data"].insert(0, credit)
    b.at(t1, ("customer.subscription.updated", _priced(b.sub("active", course_b), course_b)),
         ("charge.succeeded", ch2), ("payment_intent.succeeded", b.intent("pi2", ch2, amount, created=t1,
                                                                          invoice=in2)))
    b.invoice_paid(inv, pi2, t1)
    return _moved(b, (ch0, pi0, in1, sub_id), (ch2, amount), course_a, course_b)


def two_subscriptions_for_two_courses(b: Builder) -> Story:
    """One customer subscribes to two courses through two Checkout Sessions that name none (the course is
    on each subscription); each payment and subscription keeps its own course."""
    b.begin()
    pays, subs = {}, {}
    for n, course in (("1", "course_first_sub"), ("2", "course_second_sub")):
        sub_id, pi_id, in_id = b.ids(f"sub{n}"), b.ids(f"pi{n}"), b.ids(f"in{n}")
        at = T0 + (int(n) - 1) * DAY
        sub = subscription(sub_id, customer=b.cus, created=at, metadata={"course_id": course}, api_version=b.v)
        ch = b.charge(f"ch{n}", created=at, pi=pi_id, inv=in_id)
        inv = invoice(in_id, customer=b.cus, subscription=sub_id, amount_paid=PRICE, charge=ch["id"],
                      payment_intent=pi_id, created=at, subscription_metadata={"course_id": course},
                      api_version=b.v, include_payments=False)
        b._billed_to_customer(inv)
        session = checkout_session(b.ids(f"cs{n}"), customer=b.cus, email=b.email, name=b.name, amount_total=PRICE,
                                   mode="subscription", subscription=sub_id, invoice=in_id, created=at)
        b.at(at, ("customer.subscription.created", sub), ("charge.succeeded", ch),
             ("payment_intent.succeeded", b.intent(f"pi{n}", ch, created=at, invoice=in_id)))
        b.invoice_paid(inv, pi_id, at)
        b.at(at, ("checkout.session.completed", session))
        pays[ch["id"]] = Pay(pi_id, PRICE, "succeeded", course, in_id, sub_id)
        subs[sub_id] = (course, "active")
    b.final(b.customer())
    return b.story(Expected((b.name, b.email, False), pays, subs, ["course_first_sub", "course_second_sub"]))


SCENARIOS.update({f.__name__: f for f in (price_moves_to_another_course, price_moves_with_a_proration_invoice,
                                           two_subscriptions_for_two_courses)})


def delivery_plan(events: list, order, *, largest_batch: int = 3) -> list[list]:
    """Batches of deliveries: "in-order", "reversed", or (a seed) shuffled with about a third of the events
    sent twice more, in batches of 1 to `largest_batch`."""
    if order == "in-order":
        return [[e] for e in events]
    if order == "reversed":
        return [[e] for e in reversed(events)]
    rng = random.Random(order)
    deliveries = events + rng.sample(events, len(events) // 3) + rng.sample(events, len(events) // 3)
    rng.shuffle(deliveries)
    batches = []
    while deliveries:
        size = rng.randint(1, largest_batch)
        batches.append(deliveries[:size])
        deliveries = deliveries[size:]
    return batches


def build(name: str, tag: str, version: str) -> Story:
    """Scenario `name` for API `version`, with ids tagged `tag`."""
    return SCENARIOS[name](Builder(Ids(tag), version))
