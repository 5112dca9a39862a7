"""The Stripe side and our side of bench/reconcile.py: N objects over two connected accounts, 1% drifted.

Deterministic from (objects, seed): the lean fake Stripe (bench/lean_stripe.py, its own process) and the
harness build the same dataset independently. A *bundle* is one learner of one account: a customer, a
one-off course purchase (its charge), a monthly subscription and, for every other bundle pair, a partial
refund of the charge. Shapes are API version 2024-06-20's (the project's default: no `refunds` list on a
charge, `current_period_*` on the subscription).

Drift scenarios, each applied to whole bundles until 1% of the objects differ; `expected` holds the
exact (account, object, field) items a reconciliation must report, and `drifted` the objects it may change.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

ACCOUNTS = ("acct_1BenchAlpha00001", "acct_1BenchBravo00002")
KINDS = ("customer", "charge", "refund", "subscription")  # the order a reconciliation lists them in
LIST_PATHS = {"customer": "/v1/customers", "charge": "/v1/charges", "refund": "/v1/refunds",
              "subscription": "/v1/subscriptions"}
T0 = 1_764_547_200  # 2025-12-01T00:00:00Z
DAY = 86_400
AMOUNT, REFUNDED = 4900, 1000
COURSE, SUB_COURSE = "course_bench", "course_bench_sub"
DRIFT_SHARE = 0.01

# scenario → the fields it makes differ, per kind of object (refund-less bundles skip the refund ones)
SCENARIOS = {
    "customer_name": {"customer": ("name",)},
    "customer_email": {"customer": ("email",)},
    "customer_missing": {"customer": ("exists",), "charge": ("exists",), "refund": ("exists",),
                         "subscription": ("exists",)},
    "customer_deleted": {"customer": ("deleted_in_stripe",)},
    "refund_missing": {"charge": ("amount_refunded",), "refund": ("exists",)},
    "refund_status": {"refund": ("status",)},
    "subscription_canceled": {"subscription": ("status", "canceled_at", "ended_at")},
    "subscription_paused": {"subscription": ("pause_collection",)},
    "subscription_cancel_at_period_end": {"subscription": ("cancel_at_period_end", "cancel_at")},
}
NEEDS_REFUND = ("refund_missing", "refund_status")


@dataclass
class Bundle:
    n: int
    account: str
    has_refund: bool
    scenario: str | None = None

    @property
    def created(self) -> int:
        return T0 + self.n * 37

    def ids(self) -> dict[str, str]:
        n = self.n
        ids = {"customer": f"cus_Bench{n:09d}", "charge": f"ch_Bench{n:09d}", "subscription": f"sub_Bench{n:09d}",
               "pi": f"pi_Bench{n:09d}"}
        if self.has_refund:
            ids["refund"] = f"re_Bench{n:09d}"
        return ids

    def customer_row_id(self) -> str:
        return f"00000000-0000-4000-8000-{self.n:012d}"


@dataclass
class Dataset:
    objects: int
    seed: int = 7
    bundles: list[Bundle] = field(default_factory=list)

    def __post_init__(self):
        count, n = 0, 0
        while count < self.objects:
            bundle = Bundle(n, ACCOUNTS[n % 2], has_refund=(n // 2) % 2 == 0)
            self.bundles.append(bundle)
            count += 4 if bundle.has_refund else 3
            n += 1
        self._drift()

    def _drift(self) -> None:
        rng = random.Random(self.seed)
        order = list(range(len(self.bundles)))
        rng.shuffle(order)
        names = list(SCENARIOS)
        want, drifted, turn = max(1, round(self.total * DRIFT_SHARE)), 0, 0
        for index in order:
            if drifted >= want:
                break
            bundle = self.bundles[index]
            scenario = names[turn % len(names)]
            if scenario in NEEDS_REFUND and not bundle.has_refund:
                continue
            turn += 1
            bundle.scenario = scenario
            drifted += len({obj for _, obj, _ in self._items(bundle)})

    @property
    def total(self) -> int:
        """Stripe's objects: every listed one and the deleted customers (retrievable, never listed)."""
        return sum(4 if b.has_refund else 3 for b in self.bundles)

    # --- Stripe's side --------------------------------------------------------------------------

    def stripe_objects(self) -> dict[tuple[str, str], list[dict]]:
        """(account, kind) → the listed objects, newest first (as Stripe lists them)."""
        out: dict[tuple[str, str], list[dict]] = {(a, k): [] for a in ACCOUNTS for k in KINDS}
        for bundle in reversed(self.bundles):  # newest first: `created` grows with n
            for kind, obj in self.stripe_bundle(bundle).items():
                if not obj.get("deleted"):
                    out[(bundle.account, kind)].append(obj)
        return out

    def deleted_customers(self) -> dict[tuple[str, str], dict]:
        """(account, id) → the deletion stub GET /v1/customers/{id} answers."""
        return {(b.account, b.ids()["customer"]): {"id": b.ids()["customer"], "object": "customer", "deleted": True}
                for b in self.bundles if b.scenario == "customer_deleted"}

    def stripe_bundle(self, b: Bundle) -> dict[str, dict]:
        ids, t, n = b.ids(), b.created, b.n
        name, email = f"Learner {n}", f"learner{n}@example.com"
        out = {"customer": _customer(ids["customer"], t, name, email),
               "charge": _charge(ids, t + 5, name, email, REFUNDED if b.has_refund else 0),
               "subscription": _subscription(ids, t + 10)}
        if b.has_refund:
            out["refund"] = _refund(ids, t + 600)
        sub = out["subscription"]
        if b.scenario == "customer_deleted":
            out["customer"] = {"id": ids["customer"], "object": "customer", "deleted": True}
        if b.scenario in ("customer_deleted", "subscription_canceled"):
            sub.update(status="canceled", canceled_at=t + 20 * DAY, ended_at=t + 20 * DAY)
            sub["cancellation_details"]["reason"] = "cancellation_requested"
        elif b.scenario == "subscription_paused":
            sub["pause_collection"] = {"behavior": "void", "resumes_at": None}
        elif b.scenario == "subscription_cancel_at_period_end":
            sub.update(cancel_at_period_end=True, cancel_at=sub["current_period_end"])
        return out

    # --- our side -------------------------------------------------------------------------------

    def local_rows(self, b: Bundle) -> dict[str, dict]:
        """Our rows for a bundle, as the handlers hold them after its events (minus the drift)."""
        if b.scenario == "customer_missing":
            return {}
        stripe = self.stripe_bundle(b)
        ids, charge, sub = b.ids(), stripe["charge"], stripe["subscription"]
        row_id = b.customer_row_id()
        name, email = f"Learner {b.n}", f"learner{b.n}@example.com"
        if b.scenario == "customer_name":
            name = f"Learner {b.n} (before the rename)"
        if b.scenario == "customer_email":
            email = f"old.learner{b.n}@example.com"
        rows = {"customer": {"id": row_id, "account": b.account, "stripe_customer_id": ids["customer"], "name": name,
                             "email": email, "deleted_in_stripe": False, "stripe_created": b.created, "stripe_rank": 1}}
        refunded = REFUNDED if b.has_refund and b.scenario != "refund_missing" else 0
        rows["charge"] = {
            "account": b.account, "customer_id": row_id, "stripe_customer_id": ids["customer"],
            "stripe_charge_id": ids["charge"], "stripe_payment_intent_id": ids["pi"], "course_id": COURSE,
            "amount": AMOUNT, "currency": "usd", "charge_status": "succeeded", "amount_refunded": refunded,
            "status": "partially_refunded" if refunded else "succeeded", "created": _ts(charge["created"]),
            "stripe_created": charge["created"] if not refunded else charge["created"] + 595, "stripe_rank": 1}
        if b.has_refund and b.scenario != "refund_missing":
            refund = stripe["refund"]
            status = "pending" if b.scenario == "refund_status" else "succeeded"
            rows["refund"] = {"account": b.account, "stripe_refund_id": ids["refund"],
                              "stripe_charge_id": ids["charge"], "amount": REFUNDED, "currency": "usd",
                              "status": status, "reason": "requested_by_customer", "origin": "stripe",
                              "stripe_created": refund["created"], "stripe_rank": 0 if status == "pending" else 2}
        canceled = b.scenario == "customer_deleted"  # we saw its subscription end, not the customer's deletion
        ended = _ts(sub["ended_at"]) if canceled else None
        rows["subscription"] = {
            "account": b.account, "stripe_subscription_id": ids["subscription"], "stripe_customer_id": ids["customer"],
            "customer_id": row_id, "course_id": SUB_COURSE, "status": "canceled" if canceled else "active",
            "pause_collection": None, "cancel_at_period_end": False, "cancel_at": None, "canceled_at": ended,
            "ended_at": ended, "current_period_end": _ts(sub["current_period_end"]),
            "stripe_created": sub["ended_at"] if canceled else sub["created"], "stripe_rank": 3 if canceled else 1}
        return rows

    # --- what a reconciliation must find ----------------------------------------------------------

    def _items(self, b: Bundle) -> list[tuple[str, str, str]]:
        if b.scenario is None:
            return []
        ids = b.ids()
        return [(b.account, ids[kind], f) for kind, fields in SCENARIOS[b.scenario].items() if kind in ids
                for f in fields]

    def expected(self) -> set[tuple[str, str, str]]:
        """Every drift item: (account, Stripe id, field)."""
        return {item for b in self.bundles for item in self._items(b)}

    def drifted(self) -> set[tuple[str, str]]:
        """(account, Stripe id) of every object that differs: the only ones a fixing run may change."""
        return {(a, obj) for a, obj, _ in self.expected()}

    def pages(self, page: int = 100) -> dict[tuple[str, str], int]:
        """List pages a full read takes, by (account, kind): ⌈listed / page⌉, at least one (an empty list
        is one request)."""
        listed = self.stripe_objects()
        return {key: max(1, -(-len(objs) // page)) for key, objs in listed.items()}


def _ts(epoch: int | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, tz=UTC) if epoch else None


def _customer(cus_id: str, created: int, name: str, email: str) -> dict:
    return {"id": cus_id, "object": "customer", "address": None, "balance": 0, "created": created,
            "currency": "usd", "default_source": None, "delinquent": False, "description": None, "discount": None,
            "email": email, "invoice_prefix": cus_id[-8:].upper(),
            "invoice_settings": {"custom_fields": None, "default_payment_method": None, "footer": None,
                                 "rendering_options": None},
            "livemode": False, "metadata": {}, "name": name, "next_invoice_sequence": 2, "phone": None,
            "preferred_locales": [], "shipping": None, "tax_exempt": "none", "test_clock": None}


def _charge(ids: dict, created: int, name: str, email: str, refunded: int) -> dict:
    n = ids["charge"][-9:]
    return {"id": ids["charge"], "object": "charge", "amount": AMOUNT, "amount_captured": AMOUNT,
            "amount_refunded": refunded, "application": None, "application_fee": None,
            "application_fee_amount": None, "balance_transaction": f"txn_Bench{n}",
            "billing_details": {"address": {"city": None, "country": "US", "line1": None, "line2": None,
                                            "postal_code": "94107", "state": None},
                                "email": email, "name": name, "phone": None},
            "calculated_statement_descriptor": "TEACHERY", "captured": True, "created": created, "currency": "usd",
            "customer": ids["customer"], "description": None, "disputed": False, "failure_balance_transaction": None,
            "failure_code": None, "failure_message": None, "fraud_details": {}, "invoice": None, "livemode": False,
            "metadata": {"course_id": COURSE},
            "outcome": {"network_status": "approved_by_network", "reason": None, "risk_level": "normal",
                        "risk_score": 32, "seller_message": "Payment complete.", "type": "authorized"},
            "paid": True, "payment_intent": ids["pi"], "payment_method": f"pm_Bench{n}",
            "payment_method_details": {"card": {"brand": "visa", "country": "US", "exp_month": 12, "exp_year": 2030,
                                                "funding": "credit", "last4": "4242", "network": "visa"},
                                       "type": "card"},
            "receipt_email": email, "receipt_number": None, "receipt_url": None, "refunded": False, "review": None,
            "shipping": None, "source_transfer": None, "statement_descriptor": None, "status": "succeeded",
            "transfer_data": None, "transfer_group": None}


def _refund(ids: dict, created: int) -> dict:
    n = ids["refund"][-9:]
    return {"id": ids["refund"], "object": "refund", "amount": REFUNDED, "balance_transaction": f"txn_BenchR{n}",
            "charge": ids["charge"], "created": created, "currency": "usd",
            "destination_details": {"card": {"reference_status": "pending",
                                             "reference_type": "acquirer_reference_number", "type": "refund"},
                                    "type": "card"},
            "metadata": {}, "payment_intent": ids["pi"], "reason": "requested_by_customer", "receipt_number": None,
            "source_transfer_reversal": None, "status": "succeeded", "transfer_reversal": None}


def _subscription(ids: dict, created: int) -> dict:
    n, sub_id = ids["subscription"][-9:], ids["subscription"]
    end = created + 30 * DAY
    price = {"id": "price_BenchMonthly", "object": "price", "active": True, "billing_scheme": "per_unit",
             "created": T0 - 90 * DAY, "currency": "usd", "livemode": False, "lookup_key": None, "metadata": {},
             "nickname": None, "product": "prod_BenchCourse", "recurring": {
                 "aggregate_usage": None, "interval": "month", "interval_count": 1, "usage_type": "licensed"},
             "tax_behavior": "unspecified", "type": "recurring", "unit_amount": 1900, "unit_amount_decimal": "1900"}
    item = {"id": f"si_Bench{n}", "object": "subscription_item", "billing_thresholds": None, "created": created,
            "metadata": {}, "price": price, "quantity": 1, "subscription": sub_id, "tax_rates": []}
    return {"id": sub_id, "object": "subscription", "application": None, "application_fee_percent": None,
            "automatic_tax": {"enabled": False, "liability": None}, "billing_cycle_anchor": created,
            "billing_thresholds": None, "cancel_at": None, "cancel_at_period_end": False, "canceled_at": None,
            "cancellation_details": {"comment": None, "feedback": None, "reason": None},
            "collection_method": "charge_automatically", "created": created, "currency": "usd",
            "current_period_end": end, "current_period_start": created, "customer": ids["customer"],
            "days_until_due": None, "default_payment_method": f"pm_Bench{n}", "description": None,
            "discount": None, "discounts": [], "ended_at": None,
            "items": {"object": "list", "data": [item], "has_more": False, "total_count": 1,
                      "url": f"/v1/subscription_items?subscription={sub_id}"},
            "latest_invoice": f"in_Bench{n}", "livemode": False, "metadata": {"course_id": SUB_COURSE},
            "next_pending_invoice_item_invoice": None, "on_behalf_of": None, "pause_collection": None,
            "payment_settings": {"payment_method_options": None, "payment_method_types": None,
                                 "save_default_payment_method": "off"},
            "pending_invoice_item_interval": None, "pending_setup_intent": None, "pending_update": None,
            "schedule": None, "start_date": created, "status": "active", "test_clock": None, "transfer_data": None,
            "trial_end": None, "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
            "trial_start": None}
