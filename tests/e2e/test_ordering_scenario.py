"""One customer's whole history, shuffled and duplicated, always ends at Stripe's final state."""
import copy
import random

import pytest

ACCT = "acct_1TestCreator"
FINAL_PROFILES = {}  # the first seed's final profile; every other order must match it
T0 = 1764000000

def ev(i, type_, obj, created, prev=None):
    e = {"id": f"evt_{i:04d}", "object": "event", "api_version": "2024-06-20", "created": created, "type": type_,
         "account": ACCT, "livemode": False, "pending_webhooks": 1, "data": {"object": obj}}
    if prev is not None:
        e["data"]["previous_attributes"] = prev
    return e

def charge(amount_refunded=0, refunded=False):
    return {"id": "ch_1", "object": "charge", "amount": 4900, "currency": "usd", "customer": "cus_1", "status": "succeeded",
            "payment_intent": "pi_1", "created": T0, "amount_refunded": amount_refunded, "refunded": refunded,
            "metadata": {}, "billing_details": {"email": "jane@example.com", "name": "Jane"}}

def refund(id_, amount, status):
    return {"id": id_, "object": "refund", "amount": amount, "currency": "usd", "charge": "ch_1", "payment_intent": "pi_1",
            "status": status, "reason": "requested_by_customer", "metadata": {}, "created": T0 + 10}

def sub(status="active", pause=None, cape=False, cancel_at=None, canceled_at=None, ended_at=None):
    return {"id": "sub_1", "object": "subscription", "customer": "cus_1", "status": status, "pause_collection": pause,
            "cancel_at_period_end": cape, "cancel_at": cancel_at, "canceled_at": canceled_at, "ended_at": ended_at,
            "metadata": {"course_id": "course_sub"}, "items": {"object": "list", "data": [{"id": "si_1", "current_period_end": T0 + 86400 * 30}]}}

def history():
    session = {"id": "cs_1", "object": "checkout.session", "mode": "payment", "customer": "cus_1", "payment_intent": "pi_1",
               "payment_status": "paid", "status": "complete", "amount_total": 4900, "currency": "usd", "created": T0,
               "customer_details": {"email": "jane@example.com", "name": "Jane"}, "metadata": {"course_id": "course_1"}}
    return [
        ev(1, "customer.created", {"id": "cus_1", "object": "customer", "name": "Jane", "email": "jane@example.com"}, T0),
        ev(2, "checkout.session.completed", session, T0),
        ev(3, "charge.succeeded", charge(), T0),
        ev(4, "payment_intent.succeeded", {"id": "pi_1", "object": "payment_intent", "customer": "cus_1", "amount": 4900, "amount_received": 4900, "currency": "usd", "status": "succeeded", "latest_charge": "ch_1", "metadata": {}, "created": T0}, T0),
        ev(5, "customer.subscription.created", sub("incomplete"), T0),
        ev(6, "customer.subscription.updated", sub("active"), T0, {"status": "incomplete"}),
        ev(7, "refund.created", refund("re_1", 1000, "succeeded"), T0 + 10),
        ev(8, "charge.refunded", charge(1000), T0 + 10),
        ev(9, "refund.created", refund("re_2", 500, "pending"), T0 + 20),
        ev(10, "charge.refunded", charge(1500), T0 + 20),
        ev(11, "refund.failed", refund("re_2", 500, "failed"), T0 + 25),
        ev(12, "charge.refund.updated", refund("re_2", 500, "failed"), T0 + 25),
        ev(13, "customer.subscription.updated", sub(pause={"behavior": "void", "resumes_at": None}), T0 + 30, {"pause_collection": None}),
        ev(14, "customer.subscription.updated", sub(), T0 + 40, {"pause_collection": {"behavior": "void", "resumes_at": None}}),
        ev(15, "customer.subscription.updated", sub(cape=True, cancel_at=T0 + 86400 * 30), T0 + 50, {"cancel_at_period_end": False}),
        ev(16, "customer.subscription.deleted", sub("canceled", cape=True, cancel_at=T0 + 86400 * 30, canceled_at=T0 + 60, ended_at=T0 + 60), T0 + 60),
        ev(17, "customer.updated", {"id": "cus_1", "object": "customer", "name": "Jane Doe", "email": "jane@example.com"}, T0 + 70, {"name": "Jane"}),
    ]

def normalize(p):
    """The profile without what legitimately depends on delivery order (the activity log)."""
    p = copy.deepcopy(p)
    p.pop("id")
    p.pop("activity")
    return p

@pytest.mark.parametrize("seed", range(12))
def test_shuffled(seed, deliver, run_worker, admin):
    events = history()
    rng = random.Random(seed)
    batch = events + rng.sample(events, 6)
    rng.shuffle(batch)
    for e in batch:
        deliver(e)
        if rng.random() < 0.3:
            run_worker()
    run_worker()
    # events waiting on something get woken; run again until quiet
    for _ in range(3):
        run_worker()
    status, body = admin("GET", "/events?limit=1000")
    bad = [(e["id"], e["status"], e["last_error"]) for e in body["events"] if e["status"] not in ("processed",)]
    assert not bad
    status, p = admin("GET", f"/stripe-customers/cus_1?account={ACCT}")
    assert status == 200
    assert p["name"] == "Jane Doe"
    [pay] = p["payments"]
    assert (pay["amount_refunded"], pay["status"], pay["course_id"]) == (1000, "partially_refunded", "course_1"), pay
    assert sorted((r["stripe_refund_id"], r["status"]) for r in pay["refunds"]) == [("re_1", "succeeded"), ("re_2", "failed")]
    [s] = p["subscriptions"]
    assert (s["status"], s["pause_collection"], s["cancel_at_period_end"]) == ("canceled", None, True), s
    assert s["ended_at"] is not None and s["canceled_at"] is not None
    assert [(e["course_id"], e["access"]) for e in p["enrollments"]] == [("course_1", "active")]
    out = normalize(p)
    FINAL_PROFILES.setdefault("reference", out)
    assert out == FINAL_PROFILES["reference"]
