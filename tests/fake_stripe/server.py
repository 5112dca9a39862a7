"""A small, stateful fake of Stripe's API: a real HTTP server (stdlib only) in a thread.

It holds customers, charges, refunds, payment intents, invoices, checkout sessions and
subscriptions per account (the `Stripe-Account` header; None = the platform), answers the reads
and writes teachery-sync makes, records every request (method, path, Stripe-Account,
Idempotency-Key, params), and produces the events Stripe would send for each change: full
envelopes with `created`, `account`, `api_version` and `request.idempotency_key`. A test takes
them with `take_events()`, signs them and POSTs them to the service's receiver.

Object shapes follow the API version given to the fake (2020-03-02 … 2025-03-31.basil):
- before 2022-11-15 a charge lists its `refunds` and a payment intent its `charges`;
- 2025-03-31.basil: `invoice.parent.subscription_details`, `invoice.payments`, no `charge.invoice`,
  `current_period_*` on subscription items instead of the subscription.

A test can also put objects as they are in Stripe (`put`, `put_event` for the Events API), make
every request answer 503 (`down`), or any status for a while (`fail_for`: 500s, 429s), one request fail (`fail_next`), an account answer 429 beyond a
request rate (`limit_rate`, a token bucket like Stripe's, with `Retry-After` or without), the key be refused
(`api_key_revoked`), GETs of a path wait until released (`hold`), and read what was asked (`calls`,
`calls_to`, `writes`; each request records its `status` and arrival time `at`, time.monotonic()). Lists are newest first, in pages of `limit` (at most `page_size`).

The fake has its own clock (`now`), advanced by `tick()` on every change; never the wall clock.
"""
from __future__ import annotations

import copy
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from tests.support import BASIL, V2022, at_least

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
DAY = 86_400
ACTIVE_REFUND = ("pending", "requires_action", "succeeded")
KINDS = {"customers": "customer", "charges": "charge", "refunds": "refund", "subscriptions": "subscription",
         "payment_intents": "payment_intent", "invoices": "invoice", "checkout/sessions": "checkout.session",
         "invoice_payments": "invoice_payment", "prices": "price"}

_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}_BB{next(_ids):07d}z"


class StripeError(Exception):
    def __init__(self, status: int, type_: str, message: str, code: str | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.status, self.type, self.message, self.code = status, type_, message, code
        self.headers = headers or {}  # sent with the answer (Retry-After, Stripe-Should-Retry)

    def body(self) -> dict:
        return {"error": {"type": self.type, "message": self.message, "code": self.code}}


def _nest(pairs: list[tuple[str, str]]) -> dict:
    """Stripe's form encoding (a[b]=c, expand[0]=x, expand[]=x) as nested dicts/lists."""
    out: dict = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if last:
                if part == "" or part.isdigit():  # list element
                    node.setdefault("__list__", []).append(value)
                else:
                    node[part] = value
            else:
                node = node.setdefault(part, {})
    return _lists(out)


def _lists(node):
    if isinstance(node, dict):
        if set(node) == {"__list__"}:
            return node["__list__"]
        return {k: _lists(v) for k, v in node.items()}
    return node


class RateLimit:
    """One account's request rate, as Stripe enforces it: a token bucket holding one second of the rate;
    a request without a token is answered 429, with `Retry-After` (whole seconds) unless it is None."""

    def __init__(self, per_second: float, retry_after: int | None = 1, tokens: float | None = None):
        self.per_second, self.retry_after = per_second, retry_after
        self.tokens = per_second if tokens is None else tokens
        self.last = time.monotonic()

    def take(self) -> StripeError | None:
        now = time.monotonic()
        self.tokens = min(self.per_second, self.tokens + (now - self.last) * self.per_second)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        return StripeError(429, "invalid_request_error", "Request rate limit exceeded (fake).", "rate_limit",
                           headers)


EVERY_ACCOUNT = object()  # a hold of a path for every account's requests


class Held:
    """GET requests of one path, held: `asked` is set when one arrives, which then waits for release().
    With `after`, that many GETs of the path are answered at once first; with `account` (None: the
    platform), only that account's GETs count and wait."""

    def __init__(self, after: int = 0, account=EVERY_ACCOUNT):
        self.asked = threading.Event()
        self.released = threading.Event()
        self.account = account
        self._passes = after
        self._lock = threading.Lock()

    def holds_next(self, account) -> bool:
        """Whether the GET of `account` arriving now is held (else it is one of the first `after`, or of
        another account)."""
        if self.account is not EVERY_ACCOUNT and account != self.account:
            return False
        with self._lock:
            if self._passes > 0:
                self._passes -= 1
                return False
            return True

    def release(self) -> None:
        self.released.set()


class FakeStripe:
    url: str | None = None  # set by the server that serves it

    def __init__(self, api_version: str = "2024-06-20", now: int = T0):
        self.lock = threading.RLock()
        self.reset(api_version, now)

    # --- state ------------------------------------------------------------------------------

    def reset(self, api_version: str = "2024-06-20", now: int = T0, *, refund_answer_status: str = "succeeded",
              page_size: int = 100) -> None:
        for held in getattr(self, "holds", {}).values():
            held.release()  # let the requests of the last test go
        self.holds: dict[str, Held] = {}
        with self.lock:
            self.api_version = api_version
            self.now = now
            self.objects: dict[tuple, dict] = {}  # (account, kind, id) -> object
            self.order: dict[tuple, int] = {}
            self._version = 0  # bumped by every object kept: the list caches below are rebuilt after it
            self._cache: dict[tuple, tuple] = {}
            self.api_events: list[tuple] = []  # (account, event as the Events API shows it): GET /v1/events
            self._pending: list[dict] = []  # what the test has not taken yet
            self.requests: list[dict] = []
            self._replies: dict[tuple, tuple[int, dict]] = {}
            self.fail_next: list[tuple[str, str, StripeError]] = []  # (method, path prefix, error)
            self.refund_answer_status = refund_answer_status  # what POST /v1/refunds answers
            self.api_key_revoked = False  # True: every request answers 401, as for a rolled key
            self.down = False  # True: every request answers 503 (Stripe-Should-Retry: false)
            self.page_size = page_size  # the most a list page holds, whatever `limit` asks
            self.rate_limits: dict = {}  # account -> RateLimit (see limit_rate)
            self.failing: tuple | None = None  # (until, StripeError): see fail_for

    def limit_rate(self, account, per_second: float, *, retry_after: int | None = 1,
                   tokens: float | None = None) -> RateLimit:
        """Answer 429 to this account's requests beyond `per_second` (burst: one second of it). `tokens`:
        what the bucket holds now (0: as if someone else had just spent the account's second)."""
        with self.lock:
            limit = self.rate_limits[account] = RateLimit(per_second, retry_after, tokens)
            return limit

    def fail_for(self, seconds: float, status: int, *, retry_after: int | None = 1) -> None:
        """Answer every request `status` for the next `seconds` (wall clock): Stripe having a bad moment.
        429 is a rate limit (with `Retry-After` unless None), anything else an api_error that may be retried
        (no `Stripe-Should-Retry: false`, unlike `down`)."""
        if status == 429:
            error = StripeError(429, "invalid_request_error", "Request rate limit exceeded (fake).", "rate_limit",
                                {} if retry_after is None else {"Retry-After": str(retry_after)})
        else:
            error = StripeError(status, "api_error", f"Stripe answers {status} for a while (fake)")
        with self.lock:
            self.failing = (time.monotonic() + seconds, error)

    @property
    def basil(self) -> bool:
        return at_least(self.api_version, BASIL)

    @property
    def modern(self) -> bool:  # 2022-11-15 and later: no charge.refunds, payment_intent.latest_charge
        return at_least(self.api_version, V2022)

    def tick(self, seconds: int = 60) -> int:
        self.now += seconds
        return self.now

    def _keep(self, account, obj: dict) -> dict:
        key = (account, obj["object"], obj["id"])
        if key not in self.order:
            self.order[key] = len(self.order)
        self.objects[key] = obj
        self._version += 1
        return obj

    def put(self, *objects: dict, account=None) -> None:
        """Make copies of objects retrievable and listable (their current state in Stripe) for this account."""
        with self.lock:
            for obj in objects:
                self._keep(account, copy.deepcopy(obj))

    def put_event(self, *events: dict, account=None, strip_account: bool = True) -> None:
        """Make events listable under /v1/events for this account (by default as the API shows them:
        without the top-level `account` a Connect webhook carries)."""
        with self.lock:
            for event in events:
                copied = copy.deepcopy(event)
                if strip_account:
                    copied.pop("account", None)
                self.api_events.append((account, copied))

    def hold(self, path: str, *, after: int = 0, account=EVERY_ACCOUNT) -> Held:
        """Hold every GET of `path` (after the first `after` of them; of `account` only, when given) until
        the returned Held is released (so that the process that asked stays busy for as long as a test
        needs); then answer it as usual."""
        held = self.holds[path] = Held(after, account)
        return held

    @property
    def calls(self) -> list[dict]:
        """Every request the fake answered, oldest first."""
        return self.requests

    def calls_to(self, path_part: str) -> list[dict]:
        return [r for r in self.requests if path_part in r["path"]]

    def get(self, account, kind: str, object_id: str) -> dict:
        return self.objects[(account, kind, object_id)]

    def take_events(self) -> list[dict]:
        with self.lock:
            events, self._pending = self._pending, []
            return events

    def writes(self, path_part: str = "") -> list[dict]:
        return [r for r in self.requests if r["method"] != "GET" and path_part in r["path"]]

    def _event(self, type_: str, obj: dict, account, *, previous: dict | None = None,
               idempotency_key: str | None = None) -> dict:
        event = {
            "id": new_id("evt"), "object": "event", "api_version": self.api_version,
            "created": self.now, "data": {"object": copy.deepcopy(self._shaped(obj, account))},
            "livemode": False, "pending_webhooks": 1,
            "request": {"id": new_id("req") if idempotency_key else None, "idempotency_key": idempotency_key},
            "type": type_,
        }
        if previous is not None:
            event["data"]["previous_attributes"] = previous
        if account:
            event["account"] = account
        self.api_events.append((account, self._api_event(event)))
        self._pending.append(event)
        return event

    def _shaped(self, obj: dict, account) -> dict:
        """The object as this API version shows it: charge.refunds listed before 2022-11-15, and whenever
        the stored charge carries its own list (a test's payload shaped for an older version): the refunds
        the charge listed, each as its stored refund says now, and the refunds made since."""
        obj = copy.deepcopy(obj)
        embedded = obj.get("refunds") if obj["object"] == "charge" else None
        if obj["object"] == "charge" and (not self.modern or isinstance(embedded, dict)):
            refunds = {r["id"]: r for r in (embedded or {}).get("data", [])}
            refunds.update({r["id"]: copy.deepcopy(r) for r in self._refunds_of(account, obj["id"])})
            data = sorted(refunds.values(), key=lambda r: -(r.get("created") or 0))
            obj["refunds"] = {"object": "list", "data": data, "has_more": False, "total_count": len(data),
                              "url": f"/v1/charges/{obj['id']}/refunds"}
        return obj

    # --- builders ---------------------------------------------------------------------------

    def _customer(self, cus_id, name, email):
        return {"id": cus_id, "object": "customer", "address": None, "balance": 0, "created": self.now,
                "currency": "usd", "default_source": None, "delinquent": False, "description": None,
                "discount": None, "email": email, "invoice_prefix": cus_id[-8:].upper(),
                "invoice_settings": {"custom_fields": None, "default_payment_method": None, "footer": None},
                "livemode": False, "metadata": {}, "name": name, "phone": None, "preferred_locales": [],
                "shipping": None, "tax_exempt": "none"}

    def _charge(self, cus, amount, pi_id, *, invoice=None, metadata=None, email=None, name=None):
        charge = {"id": new_id("ch"), "object": "charge", "amount": amount, "amount_captured": amount,
                  "amount_refunded": 0, "balance_transaction": new_id("txn"),
                  "billing_details": {"address": None, "email": email, "name": name, "phone": None},
                  "captured": True, "created": self.now, "currency": "usd", "customer": cus,
                  "description": None, "disputed": False, "failure_code": None, "failure_message": None,
                  "livemode": False, "metadata": metadata or {}, "outcome": {"type": "authorized"},
                  "paid": True, "payment_intent": pi_id, "payment_method": new_id("pm"),
                  "receipt_email": email, "refunded": False, "status": "succeeded"}
        if not self.basil:
            charge["invoice"] = invoice
        return charge

    def _payment_intent(self, pi_id, cus, amount, charge, *, metadata=None, invoice=None, attempts=None):
        pi = {"id": pi_id, "object": "payment_intent", "amount": amount, "amount_received": amount,
              "capture_method": "automatic", "created": self.now, "currency": "usd", "customer": cus,
              "livemode": False, "metadata": metadata or {}, "payment_method": charge["payment_method"],
              "status": "succeeded"}
        if not self.basil:
            pi["invoice"] = invoice
        if self.modern:
            pi["latest_charge"] = charge["id"]
        else:
            charges = [copy.deepcopy(c) for c in (attempts or [charge])]
            pi["charges"] = {"object": "list", "data": charges, "has_more": False,
                             "total_count": len(charges), "url": f"/v1/charges?payment_intent={pi_id}"}
        return pi

    # --- Stripe-side changes (each returns what it made; events go to take_events()) ----------

    def create_customer(self, account, name: str, email: str, cus_id: str | None = None) -> dict:
        with self.lock:
            self.tick()
            cus = self._keep(account, self._customer(cus_id or new_id("cus"), name, email))
            self._event("customer.created", cus, account)
            return cus

    def buy_course(self, account, cus_id: str, amount: int, course_id: str | None) -> dict:
        """A one-off Checkout purchase: the charge, its payment intent and the session, and their events."""
        with self.lock:
            self.tick()
            cus = self.get(account, "customer", cus_id)
            meta = {"course_id": course_id} if course_id else {}
            pi_id = new_id("pi")
            charge = self._keep(account, self._charge(cus_id, amount, pi_id, email=cus["email"], name=cus["name"]))
            pi = self._keep(account, self._payment_intent(pi_id, cus_id, amount, charge, metadata=meta))
            session = self._keep(account, {
                "id": new_id("cs_test"), "object": "checkout.session", "amount_subtotal": amount,
                "amount_total": amount, "created": self.now, "currency": "usd", "customer": cus_id,
                "customer_details": {"email": cus["email"], "name": cus["name"], "address": None, "phone": None,
                                     "tax_exempt": "none", "tax_ids": []},
                "invoice": None, "livemode": False, "metadata": meta, "mode": "payment",
                "payment_intent": pi_id, "payment_status": "paid", "status": "complete", "subscription": None,
                "success_url": "https://teachery.example/success", "url": None})
            self._event("payment_intent.created", {**pi, "status": "requires_payment_method",
                                                  "amount_received": 0}, account)
            self._event("charge.succeeded", charge, account)
            self._event("payment_intent.succeeded", pi, account)
            self._event("checkout.session.completed", session, account)
            return charge

    def subscribe(self, account, cus_id: str, amount: int, course_id: str | None) -> tuple[dict, dict]:
        """A Checkout subscription: subscription, first invoice, its payment; (subscription, charge)."""
        with self.lock:
            self.tick()
            cus = self.get(account, "customer", cus_id)
            meta = {"course_id": course_id} if course_id else {}
            sub_id, in_id, pi_id = new_id("sub"), new_id("in"), new_id("pi")
            period = (self.now, self.now + 30 * DAY)
            sub, item = self._new_subscription(sub_id, cus_id, in_id, amount, meta, period)
            self._keep(account, sub)
            charge = self._keep(account, self._charge(cus_id, amount, pi_id, invoice=in_id,
                                                    email=cus["email"], name=cus["name"]))
            pi = self._keep(account, self._payment_intent(pi_id, cus_id, amount, charge, invoice=in_id))
            invoice = self._keep(account, self._first_invoice(account, in_id, pi_id, sub, item, cus, charge, period))
            session = self._keep(account, {
                "id": new_id("cs_test"), "object": "checkout.session", "amount_total": amount,
                "created": self.now, "currency": "usd", "customer": cus_id,
                "customer_details": {"email": cus["email"], "name": cus["name"]}, "invoice": in_id,
                "livemode": False, "metadata": meta, "mode": "subscription", "payment_intent": None,
                "payment_status": "paid", "status": "complete", "subscription": sub_id})
            self._event("customer.subscription.created", {**sub, "status": "incomplete"}, account)
            self._event("charge.succeeded", charge, account)
            self._event("payment_intent.succeeded", pi, account)
            self._event("invoice.paid", invoice, account)
            self._event("invoice.payment_succeeded", invoice, account)
            self._event("customer.subscription.updated", sub, account, previous={"status": "incomplete"})
            self._event("checkout.session.completed", session, account)
            return sub, charge

    def _new_subscription(self, sub_id: str, cus_id: str, in_id: str, amount: int, meta: dict,
                          period: tuple[int, int]) -> tuple[dict, dict]:
        """An active monthly subscription of one price, and its item (which holds the period in basil)."""
        start, end = period
        price = {"id": new_id("price"), "object": "price", "active": True, "currency": "usd",
                 "product": new_id("prod"), "recurring": {"interval": "month", "interval_count": 1},
                 "type": "recurring", "unit_amount": amount}
        item = {"id": new_id("si"), "object": "subscription_item", "created": start, "metadata": {},
                "price": price, "quantity": 1, "subscription": sub_id}
        sub = {"id": sub_id, "object": "subscription", "application_fee_percent": None,
               "billing_cycle_anchor": start, "cancel_at": None, "cancel_at_period_end": False,
               "canceled_at": None, "cancellation_details": {"comment": None, "feedback": None, "reason": None},
               "collection_method": "charge_automatically", "created": start, "currency": "usd",
               "customer": cus_id, "days_until_due": None, "default_payment_method": None, "ended_at": None,
               "items": {"object": "list", "data": [item], "has_more": False, "total_count": 1,
                         "url": f"/v1/subscription_items?subscription={sub_id}"},
               "latest_invoice": in_id, "livemode": False, "metadata": meta, "pause_collection": None,
               "start_date": start, "status": "active", "trial_end": None, "trial_start": None}
        if self.basil:
            item["current_period_start"], item["current_period_end"] = start, end
        else:
            sub["current_period_start"], sub["current_period_end"] = start, end
        return sub, item

    def _first_invoice(self, account, in_id: str, pi_id: str, sub: dict, item: dict, cus: dict, charge: dict,
                       period: tuple[int, int]) -> dict:
        """A subscription's first invoice, paid by `charge`: basil links it to the subscription through
        `parent` and keeps its invoice payment, older versions name the subscription and charge on it."""
        start, end = period
        sub_id, meta, amount = sub["id"], sub["metadata"], charge["amount"]
        line = {"id": new_id("il"), "object": "line_item", "amount": amount, "currency": "usd",
                "metadata": meta, "period": {"start": start, "end": end}, "quantity": 1}
        invoice = {"id": in_id, "object": "invoice", "amount_due": amount, "amount_paid": amount,
                   "amount_remaining": 0, "billing_reason": "subscription_create", "created": self.now,
                   "currency": "usd", "customer": cus["id"], "customer_email": cus["email"],
                   "customer_name": cus["name"], "livemode": False, "metadata": {},
                   "lines": {"object": "list", "data": [line], "has_more": False, "total_count": 1,
                             "url": f"/v1/invoices/{in_id}/lines"},
                   "period_start": start, "period_end": start, "status": "paid",
                   "status_transitions": {"paid_at": self.now, "finalized_at": self.now}}
        if self.basil:
            invoice["parent"] = {"type": "subscription_details", "quote_details": None,
                                 "subscription_details": {"metadata": meta, "subscription": sub_id}}
            paid_by = self._keep(account, {"id": new_id("inpay"), "object": "invoice_payment",
                                           "amount_paid": amount, "amount_requested": amount,
                                           "created": self.now, "currency": "usd", "invoice": in_id,
                                           "is_default": True, "livemode": False,
                                           "payment": {"type": "payment_intent", "payment_intent": pi_id},
                                           "status": "paid", "status_transitions": {"paid_at": self.now}})
            invoice["payments"] = {"object": "list", "has_more": False, "url": "/v1/invoice_payments",
                                   "data": [copy.deepcopy(paid_by)]}
            line["parent"] = {"type": "subscription_item_details",
                              "subscription_item_details": {"subscription": sub_id,
                                                            "subscription_item": item["id"]}}
        else:
            invoice.update(subscription=sub_id, charge=charge["id"], payment_intent=pi_id, paid=True,
                           subscription_details={"metadata": meta})
            line["subscription"] = sub_id
        return invoice

    def renew(self, account, sub_id: str, *, failures: int, succeed: bool = True) -> tuple[list[dict], dict | None]:
        """A renewal invoice paid by one payment intent: `failures` declined attempts a day apart (each its
        own charge: charge.failed, payment_intent.payment_failed, invoice.payment_failed; the subscription
        goes past_due), then, if `succeed`, the retry that pays it (the subscription is active again).
        Basil invoice payloads leave `payments` out, as webhooks do; GET /v1/invoice_payments lists them.
        Returns (failed charges, the charge that paid or None)."""
        with self.lock:
            sub = self.get(account, "subscription", sub_id)
            cus = self.get(account, "customer", sub["customer"])
            amount = sub["items"]["data"][0]["price"]["unit_amount"]
            self.now = max(self.now, self.period_end(sub))
            in_id, pi_id = new_id("in"), new_id("pi")
            invoice = self._keep(account, self._renewal_invoice(in_id, pi_id, sub, cus, amount))
            attempt = self._keep(account, {"id": new_id("inpay"), "object": "invoice_payment", "amount_paid": None,
                                         "amount_requested": amount, "created": self.now, "currency": "usd",
                                         "invoice": in_id, "is_default": True, "livemode": False,
                                         "payment": {"type": "payment_intent", "payment_intent": pi_id},
                                         "status": "open", "status_transitions": {"paid_at": None}})
            failed, paid = [], None
            for n in range(failures):
                self.tick(DAY if n else 60)
                self._declined_renewal(account, sub, invoice, pi_id, failed)
            if succeed:
                self.tick(DAY if failures else 60)
                paid = self._paid_renewal(account, sub, invoice, attempt, pi_id, failed)
            else:
                sub["status"] = "past_due"
            return failed, paid

    def _declined_renewal(self, account, sub: dict, invoice: dict, pi_id: str, failed: list[dict]) -> None:
        """One declined attempt at a renewal invoice: its charge (added to `failed`) and events; the first
        makes the subscription past_due."""
        amount, in_id = invoice["amount_due"], invoice["id"]
        charge = self._keep(account, self._charge(sub["customer"], amount, pi_id, invoice=in_id))
        charge.update(status="failed", paid=False, captured=False, amount_captured=0,
                      balance_transaction=None, failure_code="card_declined",
                      failure_message="Your card was declined.", outcome={"type": "issuer_declined"})
        failed.append(charge)
        pi = self._keep(account, self._payment_intent(pi_id, sub["customer"], amount, charge, invoice=in_id,
                                                    attempts=failed))
        pi.update(status="requires_payment_method", amount_received=0, payment_method=None,
                  last_payment_error={"charge": charge["id"], "code": "card_declined",
                                      "type": "card_error"})
        invoice.update(attempt_count=len(failed), attempted=True, next_payment_attempt=self.now + DAY)
        if not self.basil:
            invoice["charge"] = charge["id"]
        self._event("charge.failed", charge, account)
        self._event("payment_intent.payment_failed", pi, account)
        self._event("invoice.payment_failed", invoice, account)
        if len(failed) == 1:
            self._event("customer.subscription.updated", {**sub, "status": "past_due"}, account,
                        previous={"status": "active"})

    def _paid_renewal(self, account, sub: dict, invoice: dict, attempt: dict, pi_id: str,
                      failed: list[dict]) -> dict:
        """The attempt that pays a renewal invoice: its charge, and the events; the subscription is active
        again after declined ones."""
        amount, in_id = invoice["amount_due"], invoice["id"]
        paid = self._keep(account, self._charge(sub["customer"], amount, pi_id, invoice=in_id))
        pi = self._keep(account, self._payment_intent(pi_id, sub["customer"], amount, paid, invoice=in_id,
                                                    attempts=failed + [paid]))
        invoice.update(status="paid", amount_paid=amount, amount_remaining=0, next_payment_attempt=None,
                       status_transitions={"paid_at": self.now, "finalized_at": invoice["created"]})
        if not self.basil:
            invoice.update(charge=paid["id"], paid=True)
        attempt.update(status="paid", amount_paid=amount, status_transitions={"paid_at": self.now})
        self._event("charge.succeeded", paid, account)
        self._event("payment_intent.succeeded", pi, account)
        self._event("invoice.paid", invoice, account)
        self._event("invoice.payment_succeeded", invoice, account)
        if self.basil:
            self._event("invoice_payment.paid", attempt, account)
        if failed:
            self._event("customer.subscription.updated", sub, account, previous={"status": "past_due"})
        return paid

    def _renewal_invoice(self, in_id, pi_id, sub, cus, amount):
        meta = sub["metadata"]
        invoice = {"id": in_id, "object": "invoice", "amount_due": amount, "amount_paid": 0,
                   "amount_remaining": amount, "attempt_count": 0, "attempted": False,
                   "billing_reason": "subscription_cycle", "created": self.now, "currency": "usd",
                   "customer": cus["id"], "customer_email": cus["email"], "customer_name": cus["name"],
                   "livemode": False, "metadata": {},
                   "lines": {"object": "list", "data": [{"id": new_id("il"), "object": "line_item", "amount": amount,
                                                         "currency": "usd", "metadata": meta, "quantity": 1}],
                             "has_more": False, "total_count": 1, "url": f"/v1/invoices/{in_id}/lines"},
                   "status": "open", "status_transitions": {"paid_at": None, "finalized_at": self.now}}
        if self.basil:
            invoice["parent"] = {"type": "subscription_details", "quote_details": None,
                                 "subscription_details": {"metadata": meta, "subscription": sub["id"]}}
        else:
            invoice.update(subscription=sub["id"], payment_intent=pi_id, charge=None, paid=False,
                           subscription_details={"metadata": meta})
        return invoice

    def refund(self, account, charge_id: str, amount: int | None = None, *, reason=None, metadata=None,
               idempotency_key=None, status: str = "succeeded") -> dict:
        with self.lock:
            charge = self.get(account, "charge", charge_id)
            left = charge["amount"] - charge["amount_refunded"]
            amount = left if amount is None else amount
            if amount <= 0 or amount > left:
                raise StripeError(400, "invalid_request_error",
                                  f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                                  "amount_too_large")
            self.tick()
            refund = self._keep(account, {
                "id": new_id("re"), "object": "refund", "amount": amount, "balance_transaction": new_id("txn"),
                "charge": charge_id, "created": self.now, "currency": "usd", "metadata": metadata or {},
                "payment_intent": charge["payment_intent"], "reason": reason, "receipt_number": None,
                "source_transfer_reversal": None, "status": status, "transfer_reversal": None})
            previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] == charge["amount"]
            self._event("refund.created", refund, account, idempotency_key=idempotency_key)
            self._event("charge.refunded", charge, account, previous=previous, idempotency_key=idempotency_key)
            return refund

    def settle_refund(self, account, refund_id: str, status: str) -> dict:
        """Stripe finishing a refund later: succeeded, or failed/canceled (the amount goes back)."""
        with self.lock:
            refund = self.get(account, "refund", refund_id)
            charge = self.get(account, "charge", refund["charge"])
            self.tick()
            previous = {"status": refund["status"]}
            if refund["status"] in ACTIVE_REFUND and status not in ACTIVE_REFUND:
                charge["amount_refunded"] -= refund["amount"]
                charge["refunded"] = False
            refund["status"] = status
            if status == "failed":
                refund["failure_reason"] = "expired_or_canceled_card"
                refund["failure_balance_transaction"] = new_id("txn")
                self._event("refund.failed", refund, account, previous=previous)
            self._event("refund.updated", refund, account, previous=previous)
            self._event("charge.refund.updated", refund, account, previous=previous)
            return refund

    def update_subscription(self, account, sub_id: str, changes: dict, *, idempotency_key=None) -> dict:
        with self.lock:
            sub = self.get(account, "subscription", sub_id)
            if sub["status"] == "canceled":
                raise StripeError(400, "invalid_request_error",
                                  "A canceled subscription can only update its cancellation_details and metadata.")
            self.tick()
            previous = {k: sub.get(k) for k in changes}
            sub.update(changes)
            if "cancel_at_period_end" in changes:
                sub["cancel_at"] = self.period_end(sub) if changes["cancel_at_period_end"] else None
                sub["canceled_at"] = self.now if changes["cancel_at_period_end"] else None
                previous.update(cancel_at=None, canceled_at=None)
            self._event("customer.subscription.updated", sub, account, previous=previous,
                        idempotency_key=idempotency_key)
            return sub

    def period_end(self, sub: dict) -> int:
        if "current_period_end" in sub:
            return sub["current_period_end"]
        return sub["items"]["data"][0]["current_period_end"]

    def cancel_subscription(self, account, sub_id: str, *, idempotency_key=None, at: int | None = None) -> dict:
        with self.lock:
            sub = self.get(account, "subscription", sub_id)
            if sub["status"] == "canceled":
                raise StripeError(400, "invalid_request_error", f"No such subscription: '{sub_id}'",
                                  "resource_missing")
            if at is not None:
                self.now = max(self.now, at)
            self.tick()
            sub.update(status="canceled", ended_at=self.now, canceled_at=sub["canceled_at"] or self.now)
            self._event("customer.subscription.deleted", sub, account, idempotency_key=idempotency_key)
            return sub

    def update_customer(self, account, cus_id: str, changes: dict, *, idempotency_key=None) -> dict:
        with self.lock:
            cus = self.get(account, "customer", cus_id)
            self.tick()
            previous = {k: cus.get(k) for k in changes}
            cus.update(changes)
            self._event("customer.updated", cus, account, previous=previous, idempotency_key=idempotency_key)
            return cus

    # --- the HTTP API ------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers, body: bytes) -> tuple[int, dict, dict]:
        """The answer to one request: status, body and the headers it adds."""
        split = urlsplit(raw_path)
        path = split.path
        query = _nest(parse_qsl(split.query, keep_blank_values=True))
        pairs = parse_qsl(body.decode(), keep_blank_values=True) if body else []
        form = _nest(pairs)
        account = headers.get("Stripe-Account") or None
        key = headers.get("Idempotency-Key")
        held = self.holds.get(path) if method == "GET" else None
        if held is not None and held.holds_next(account):  # outside the lock: the other requests go on meanwhile
            held.asked.set()
            held.released.wait(120)
        with self.lock:
            # params: as Stripe reads them (nested); form: the pairs as sent (a[b]=c), query: the raw query
            record = {"method": method, "path": path, "account": account, "idempotency_key": key,
                      "params": form if method != "GET" else query, "form": dict(pairs),
                      "query": split.query, "at": time.monotonic(), "status": None}
            self.requests.append(record)
            status, answer, extra = self._route_checked(method, path, headers, query, form, account, key)
            record["status"] = status
            return status, answer, extra

    def _route_checked(self, method, path, headers, query, form, account, key) -> tuple[int, dict, dict]:
        """The answer, after the checks Stripe makes first (outage, rate limit, key, a failure asked for)."""
        with self.lock:
            if self.down:
                return 503, StripeError(503, "api_error", "Stripe is down (fake)").body(), {}
            if self.failing is not None and time.monotonic() < self.failing[0]:
                error = self.failing[1]
                return error.status, error.body(), error.headers
            limit = self.rate_limits.get(account)
            refused = limit.take() if limit is not None else None
            if refused is not None:
                return refused.status, refused.body(), refused.headers
            api_key = (headers.get("Authorization") or "").removeprefix("Bearer ")
            if self.api_key_revoked or not api_key.startswith("sk_"):
                # Stripe's own wording: the key with all but its prefix and last four characters masked.
                masked = api_key[:8] + "*" * max(len(api_key) - 12, 0) + api_key[-4:]
                return 401, StripeError(401, "invalid_request_error",
                                        f"Invalid API Key provided: {masked}").body(), {}
            for i, (m, prefix, error) in enumerate(self.fail_next):
                if m == method and path.startswith(prefix):
                    del self.fail_next[i]
                    return error.status, error.body(), error.headers
            if method == "POST" and key and (account, key) in self._replies:
                return *self._replies[(account, key)], {}
            try:
                answer = 200, self._route(method, path, query if method in ("GET", "DELETE") else form, account, key)
            except StripeError as exc:
                answer = exc.status, exc.body()
            except KeyError as exc:
                missing = exc.args[0] if isinstance(exc.args[0], tuple) else (None, "object", exc.args[0])
                answer = 404, StripeError(404, "invalid_request_error", f"No such {missing[1]}: '{missing[2]}'",
                                          "resource_missing").body()
            if method == "POST" and key:
                self._replies[(account, key)] = answer
            return *answer, {}

    def _route(self, method, path, params, account, key) -> dict:
        parts = path.strip("/").split("/")
        if parts[0] != "v1":
            raise KeyError(path)
        parts = parts[1:]
        if parts[:2] == ["checkout", "sessions"]:
            parts = ["checkout/sessions"] + parts[2:]
        resource = parts[0]
        if method == "GET" and resource == "events" and len(parts) == 1:
            items = [copy.deepcopy(e) for a, e in self.api_events if a == account and _listed(e, params)]
            items.sort(key=lambda e: -(e.get("created") or 0))
            return self._page(items, params, "/v1/events")
        kind = KINDS.get(resource)
        if kind is None:
            raise KeyError(path)
        if method == "GET" and len(parts) == 1:
            return self._list(kind, params, account, path)
        if method == "GET" and len(parts) == 2:
            obj = self._shaped(self.get(account, kind, parts[1]), account)
            if "refunds" in (params.get("expand") or []) and kind == "charge" and "refunds" not in obj:
                refunds = self._refunds_of(account, obj["id"])
                obj["refunds"] = {"object": "list", "data": refunds, "has_more": False}
            return obj
        if method == "POST" and path == "/v1/refunds":
            return self._create_refund(params, account, key)
        if kind == "subscription" and len(parts) >= 2:
            answer = self._change_subscription(method, parts, params, account, key)
            if answer is not None:
                return answer
        if kind == "customer" and method == "POST" and len(parts) == 2:
            changes = {k: params[k] for k in ("name", "email") if k in params}
            return self.update_customer(account, parts[1], changes, idempotency_key=key)
        raise StripeError(404, "invalid_request_error", f"Unrecognized request URL ({method}: {path})")

    def _create_refund(self, params, account, key) -> dict:
        """POST /v1/refunds, of a charge or of a payment intent's latest charge."""
        charge_id = params.get("charge")
        if not charge_id and params.get("payment_intent"):
            charge_id = self.get(account, "payment_intent", params["payment_intent"])["latest_charge"]
        if (account, "charge", charge_id) not in self.objects:
            raise StripeError(404, "invalid_request_error", f"No such charge: '{charge_id}'", "resource_missing")
        amount = int(params["amount"]) if params.get("amount") else None
        status = self.refund_answer_status
        return self.refund(account, charge_id, amount, reason=params.get("reason") or None,
                           metadata=params.get("metadata") or {}, idempotency_key=key, status=status)

    def _change_subscription(self, method, parts, params, account, key) -> dict | None:
        """DELETE /v1/subscriptions/{id}, POST …/{id}/resume and POST …/{id} (cancel_at_period_end,
        pause_collection); None for any other request of a subscription."""
        sub_id = parts[1]
        sub = self.get(account, "subscription", sub_id)
        if method == "DELETE" and len(parts) == 2:
            return self.cancel_subscription(account, sub_id, idempotency_key=key)
        if method == "POST" and len(parts) == 3 and parts[2] == "resume":
            if sub["status"] != "paused":
                raise StripeError(400, "invalid_request_error",
                                  "Subscription is not paused; only paused subscriptions can be resumed.")
            return self.update_subscription(account, sub_id, {"status": "active", "pause_collection": None},
                                            idempotency_key=key)
        if method == "POST" and len(parts) == 2:
            changes = {}
            if "cancel_at_period_end" in params:
                changes["cancel_at_period_end"] = params["cancel_at_period_end"] == "true"
            if "pause_collection" in params:
                pc = params["pause_collection"]
                if pc == "":
                    changes["pause_collection"] = None
                else:
                    if pc.get("behavior") not in ("void", "keep_as_draft", "mark_uncollectible"):
                        raise StripeError(400, "invalid_request_error", "Invalid pause_collection[behavior]")
                    changes["pause_collection"] = {
                        "behavior": pc["behavior"],
                        "resumes_at": int(pc["resumes_at"]) if pc.get("resumes_at") else None}
            return self.update_subscription(account, sub_id, changes, idempotency_key=key)
        return None

    def _api_event(self, event: dict) -> dict:
        """The Events API's copy: like the webhook's, without the top-level `account`."""
        event = copy.deepcopy(event)
        event.pop("account", None)
        return event

    def _cached(self, key: tuple, build):
        """build(), kept until an object is kept or removed (objects change in place otherwise, and
        neither a listing's order nor a refund's charge does)."""
        stamp = (self._version, len(self.objects))
        cached = self._cache.get(key)
        if cached is None or cached[0] != stamp:
            cached = self._cache[key] = (stamp, build())
        return cached[1]

    def _refunds_of(self, account, charge_id):
        def by_charge():
            index: dict[str, list[dict]] = {}
            for (a, k, _), o in self.objects.items():
                if a == account and k == "refund":
                    index.setdefault(o["charge"], []).append(o)
            return index
        items = [copy.deepcopy(o) for o in self._cached(("refunds", account), by_charge).get(charge_id, [])]
        return sorted(items, key=lambda o: -(o.get("created") or 0))

    def _newest_first(self, account, kind) -> tuple[list[dict], dict[str, int]]:
        """The account's objects of one kind, newest first, and each id's position there."""
        def build():
            items = [(self.order[(a, k, i)], o) for (a, k, i), o in self.objects.items() if a == account and k == kind]
            items = [o for _, o in sorted(items, key=lambda t: (-(t[1].get("created") or 0), -t[0]))]
            return items, {o["id"]: n for n, o in enumerate(items)}
        return self._cached(("list", account, kind), build)

    def _list(self, kind, params, account, path):
        """Newest first; filtered by every non-paging parameter; without `status`, subscriptions leave out
        canceled ones (`status=all` lists every one); deleted customers are retrievable but never listed.
        The order is kept between requests and a page starts at its `starting_after` object's place, so
        that listing thousands of objects page by page answers quickly."""
        items, place = self._newest_first(account, kind)
        filters = dict(params)
        status = filters.pop("status", None) if kind == "subscription" else None
        # basil moved an invoice's subscription to parent.subscription_details
        sub_id = filters.pop("subscription", None) if kind == "invoice" else None
        limit = min(int(params.get("limit") or 10), self.page_size)
        after = params.get("starting_after")
        start = (place[after] + 1 if after in place else len(items)) if after else 0
        found = []
        for obj in itertools.islice(items, start, None):
            if obj.get("deleted") or not _listed(obj, filters):
                continue
            if sub_id and sub_id not in (obj.get("subscription"), ((obj.get("parent") or {}).get(
                    "subscription_details") or {}).get("subscription")):
                continue
            if kind == "subscription" and not (obj["status"] == status or status == "all"
                                               or status is None and obj["status"] != "canceled"):
                continue
            found.append(obj)
            if len(found) > limit:
                break
        return {"object": "list", "data": [self._shaped(o, account) for o in found[:limit]],
                "has_more": len(found) > limit, "url": path}

    def _page(self, items, params, url):
        limit = min(int(params.get("limit") or 10), self.page_size)
        after = params.get("starting_after")
        if after:
            ids = [o["id"] for o in items]
            items = items[ids.index(after) + 1:] if after in ids else []
        return {"object": "list", "data": items[:limit], "has_more": len(items) > limit, "url": url}


PAGING = ("limit", "starting_after", "ending_before", "expand", "created")


def _listed(obj: dict, params: dict) -> bool:
    """Whether a list request's filters (`created[gte]`, field=value and nested ones such as
    `payment[payment_intent]=pi_…`) keep obj."""
    created = params.get("created")
    if isinstance(created, dict) and created.get("gte") and (obj.get("created") or 0) < int(created["gte"]):
        return False
    return _matches(obj, {k: v for k, v in params.items() if k not in PAGING})


def _matches(obj, params: dict) -> bool:
    if not isinstance(obj, dict):
        return False
    return all(_matches(obj.get(k), v) if isinstance(v, dict) else str(obj.get(k)) == v
               for k, v in params.items() if isinstance(v, (str, dict)))


class _Handler(BaseHTTPRequestHandler):
    fake: FakeStripe = None  # set per server
    protocol_version = "HTTP/1.1"

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, answer, extra = self.server.fake.handle(self.command, self.path, self.headers, body)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if status >= 400 and status not in (409, 429) and (status < 500 or self.server.fake.down):
            self.send_header("Stripe-Should-Retry", "false")  # as Stripe says it: stripe-python gives up at once
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", new_id("req"))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _serve

    def log_message(self, *args):  # quiet
        pass


class FakeStripeServer:
    """FakeStripe behind a ThreadingHTTPServer on 127.0.0.1:<free port>."""

    def __init__(self, fake: FakeStripe | None = None):
        self.fake = fake or FakeStripe()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.fake = self.fake
        self.port = self.httpd.server_address[1]
        self.url = self.fake.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> FakeStripeServer:
        self._thread.start()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
