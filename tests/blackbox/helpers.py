"""What the profile should say, computed from the fake Stripe's final state."""
from __future__ import annotations

import random
from datetime import datetime

from tests.fake_stripe import ACTIVE_REFUND, FakeStripe
from tests.support import iso


def same_time(a: str | None, b: str | None) -> bool:
    """ISO times compared as instants (the service may write +00:00 or Z, with or without fractions)."""
    if a is None or b is None:
        return a is b
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return parse(a) == parse(b)


def buyer(svc, account, name: str, email: str, *, course: str | None = None, amount: int = 5000,
          subscribes_to: str | None = None, monthly: int = 2000) -> tuple[dict, dict | None, dict | None]:
    """A customer who bought `course` and subscribes to `subscribes_to` (each when given), in Stripe and, once
    its events are applied, in the service: (customer, charge, subscription)."""
    fake = svc.fake
    cus = fake.create_customer(account, name, email)
    charge = fake.buy_course(account, cus["id"], amount, course) if course else None
    sub = fake.subscribe(account, cus["id"], monthly, subscribes_to)[0] if subscribes_to else None
    svc.settle()
    return cus, charge, sub


def expected_payment(fake: FakeStripe, account, charge_id: str) -> dict:
    charge = fake.get(account, "charge", charge_id)
    refunds = [r for (a, k, _), r in fake.objects.items() if a == account and k == "refund" and r["charge"] == charge_id]
    refunded = sum(r["amount"] for r in refunds if r["status"] in ACTIVE_REFUND)
    status = "refunded" if refunded == charge["amount"] else "partially_refunded" if refunded else "succeeded"
    assert refunded == charge["amount_refunded"], "the fake's own bookkeeping"
    return {"amount": charge["amount"], "currency": charge["currency"], "amount_refunded": refunded,
            "status": status, "created": iso(charge["created"]),
            "refunds": {r["id"]: {"amount": r["amount"], "status": r["status"], "reason": r["reason"]} for r in refunds}}


def payment_view(payment: dict) -> dict:
    return {"amount": payment["amount"], "currency": payment["currency"],
            "amount_refunded": payment["amount_refunded"], "status": payment["status"],
            "created": payment["created"],
            "refunds": {r["stripe_refund_id"]: {"amount": r["amount"], "status": r["status"], "reason": r["reason"]}
                        for r in payment["refunds"]}}


def check_subscription(fake: FakeStripe, account, local: dict) -> None:
    sub = fake.get(account, "subscription", local["stripe_subscription_id"])
    pc = sub["pause_collection"]
    expected = {"status": sub["status"], "cancel_at_period_end": sub["cancel_at_period_end"],
                "pause_collection": None if pc is None else {"behavior": pc["behavior"],
                                                             "resumes_at": iso(pc["resumes_at"])}}
    got = {k: local[k] for k in expected}
    assert got == expected, (got, expected)
    for field in ("cancel_at", "canceled_at", "ended_at"):
        assert same_time(local[field], iso(sub[field])), (field, local[field], iso(sub[field]))
    assert same_time(local["current_period_end"], iso(fake.period_end(sub))), local["current_period_end"]


def shuffled_with_duplicates(events: list[dict], seed: int) -> list[dict]:
    """Stripe's delivery: any order, some events two or three times."""
    rng = random.Random(seed)
    out = list(events)
    for event in events:
        if rng.random() < 0.35:
            out.extend([event] * rng.choice((1, 2)))
    rng.shuffle(out)
    return out
