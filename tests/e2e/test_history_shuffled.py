"""One customer's whole history, delivered in shuffled orders with duplicates (docs/rules.md, rule 8).

Purchase with a course (Checkout → subscription → invoice → charge), a partial refund, a second partial
refund that fails, pause, resume, cancel at period end, cancel now. Events carry increasing `created`
times; several share a second where Stripe sends them together. Whatever the order, however many copies
and however the worker runs are interleaved, the final profile must be the same and equal Stripe's final
state. The objects are built by tests/stripe_events.py from the supabase stripe-sync-engine fixtures
(checkout_session_completed.json, subscription_created.json, invoice_paid.json, charge_succeeded.json,
payment_intent_succeeded.json, refund_created.json, customer_updated.json); basil shapes from
openapi/fixtures3.json HEAD.
"""
from __future__ import annotations

import pytest

from tests.stripe_events import (
    BASIL,
    DAY,
    OLD,
    T0,
    charge,
    checkout_session,
    customer,
    event,
    invoice,
    iso,
    payment_intent,
    refund,
    subscription,
)
from tests.stripe_histories import delivery_plan
from tests.support import unsettled

CUS, SUB, CH, PI, INV, CS = "cus_History01", "sub_History01", "ch_History01", "pi_History01", "in_History01", \
    "cs_test_History01"
RE1, RE2 = "re_History01", "re_History02"
COURSE = "course_whole_history"
PERIOD_END = T0 + 30 * DAY
T1, T2, T3, T4, T5, T6, T7, T8 = (T0 + n * DAY for n in (1, 2, 3, 4, 5, 6, 7, 8))


def _history(version, account=None):
    """Stripe's events for the story, in the order Stripe created them, and the objects' final states."""
    md = {"course_id": COURSE}

    def sub(**changes):
        return subscription(SUB, customer=CUS, created=T0, metadata=md, current_period_start=T0,
                            current_period_end=PERIOD_END, api_version=version, **changes)

    def ch(*refunds):
        return charge(CH, customer=CUS, amount=4900, created=T0 - 2, payment_intent=PI, invoice=INV,
                      refunds=list(refunds), api_version=version)

    re1 = refund(RE1, charge=CH, amount=1000, created=T1, payment_intent=PI, reason="requested_by_customer")
    re2_pending = refund(RE2, charge=CH, amount=1500, created=T2, payment_intent=PI, status="pending")
    re2_failed = refund(RE2, charge=CH, amount=1500, created=T2, payment_intent=PI, status="failed")
    pi = payment_intent(PI, customer=CUS, amount=4900, latest_charge=ch(), created=T0 - 3, api_version=version)
    inv = invoice(INV, customer=CUS, subscription=SUB, amount_paid=4900, charge=CH, payment_intent=PI, created=T0 - 3,
                  subscription_metadata=md, api_version=version)
    session = checkout_session(CS, customer=CUS, email="ada@example.com", name="Ada Lovelace", amount_total=4900,
                               mode="subscription", subscription=SUB, invoice=INV, created=T0 - 60)
    first_name = customer(CUS, email="ada@example.com", name="Ada Lovelace", created=T0 - 60)
    renamed = customer(CUS, email="ada.king@example.com", name="Ada King", created=T0 - 60)
    paused = sub(pause_collection={"behavior": "void", "resumes_at": None})
    at_period_end = sub(cancel_at_period_end=True, cancel_at=PERIOD_END, canceled_at=T7)
    canceled = sub(status="canceled", cancel_at_period_end=True, cancel_at=PERIOD_END, canceled_at=T8, ended_at=T8)

    def evt(type_, obj, created, previous=None):
        return event(type_, obj, created=created, api_version=version, previous_attributes=previous,
                     account=account)

    events = [
        # T0: the purchase; Stripe sends these within one second
        evt("customer.subscription.created", sub(), T0),
        evt("charge.succeeded", ch(), T0),
        evt("payment_intent.succeeded", pi, T0),
        evt("invoice.paid", inv, T0),
        evt("invoice.payment_succeeded", inv, T0),
        evt("checkout.session.completed", session, T0),
        evt("customer.updated", first_name, T0, {"name": None}),
        # T1: a partial refund (one second)
        evt("charge.refunded", ch(re1), T1, {"amount_refunded": 0, "refunded": False}),
        evt("refund.created", re1, T1),
        # T2: a second partial refund, pending
        evt("charge.refunded", ch(re1, re2_pending), T2, {"amount_refunded": 1000}),
        evt("refund.created", re2_pending, T2),
        # T3: it fails (one second)
        evt("refund.updated", re2_failed, T3, {"status": "pending"}),
        evt("refund.failed", re2_failed, T3),
        evt("charge.refund.updated", re2_failed, T3, {"status": "pending"}),
        # T4: the customer renames herself
        evt("customer.updated", renamed, T4, {"name": "Ada Lovelace", "email": "ada@example.com"}),
        # T5 pause collection, T6 resume it, T7 cancel at period end, T8 cancel now
        evt("customer.subscription.updated", paused, T5, {"pause_collection": None}),
        evt("customer.subscription.updated", sub(), T6, {"pause_collection": {"behavior": "void", "resumes_at": None}}),
        evt("customer.subscription.updated", at_period_end, T7, {"cancel_at_period_end": False, "cancel_at": None,
                                                                  "canceled_at": None}),
        evt("customer.subscription.deleted", canceled, T8),
    ]
    finals = [renamed, canceled, ch(re1, re2_failed), re1, re2_failed, pi, inv, session]
    return events, finals


EXPECTED = {
    "account": None, "stripe_customer_id": CUS, "name": "Ada King", "email": "ada.king@example.com",
    "deleted_in_stripe": False,
    "enrollments": [{"course_id": COURSE, "access": "active", "revoked_at": None}],
    "payments": [{
        "stripe_charge_id": CH, "stripe_payment_intent_id": PI, "stripe_invoice_id": INV,
        "stripe_subscription_id": SUB, "course_id": COURSE, "amount": 4900, "currency": "usd",
        "amount_refunded": 1000, "status": "partially_refunded", "created": iso(T0 - 2),
        "refunds": [
            {"stripe_refund_id": RE1, "amount": 1000, "status": "succeeded", "reason": "requested_by_customer",
             "origin": "stripe"},
            {"stripe_refund_id": RE2, "amount": 1500, "status": "failed", "reason": None, "origin": "stripe"},
        ],
    }],
    "subscriptions": [{
        "stripe_subscription_id": SUB, "course_id": COURSE, "status": "canceled", "pause_collection": None,
        "cancel_at_period_end": True, "cancel_at": iso(PERIOD_END), "canceled_at": iso(T8), "ended_at": iso(T8),
        "current_period_end": iso(PERIOD_END),
    }],
}


def _comparable(found):
    """The profile without what legitimately depends on when we processed (ids, our own clock, the log)."""
    state = {k: v for k, v in found.items() if k not in ("id", "activity")}
    state["enrollments"] = [{k: v for k, v in e.items() if k != "granted_at"} for e in found["enrollments"]]
    state["payments"] = [dict(p, refunds=sorted(p["refunds"], key=lambda r: r["stripe_refund_id"]))
                         for p in found["payments"]]
    return state


def _plan(events, seed):
    """Deliveries in batches: a shuffled order with about a third of the events sent twice more."""
    return delivery_plan(events, seed, largest_batch=6)


PLANS = ["in-order", "reversed", 11, 22, 33, 44]
ACCOUNT = "acct_1HistorySchool01"
RUNS = [(version, plan, None) for version in (OLD, BASIL) for plan in PLANS] + \
    [(OLD, 55, ACCOUNT), (BASIL, 66, ACCOUNT)]


@pytest.mark.parametrize("version,plan,account", RUNS)
def test_shuffled_history_ends_in_stripes_final_state(deliver, run_worker, admin, profile, stripe_api, version, plan,
                                                      account):
    events, finals = _history(version, account)
    stripe_api.put(*finals, account=account)  # what the Stripe API answers if the workers ask
    work_per_batch = plan in ("in-order", "reversed") or plan % 2 == 1  # odd seeds: worker after every batch

    for batch in _plan(events, plan):
        for evt in batch:
            response = deliver(evt)
            assert response.status_code == 200, response.get_data()
            assert response.get_json()["received"] is True
        if work_per_batch:
            run_worker()
    run_worker()

    found = profile(CUS, account)
    assert found is not None
    assert _comparable(found) == dict(EXPECTED, account=account)

    # every event was stored once and applied; none is left waiting or failed
    status, listed = admin("GET", "/events?limit=1000")
    assert sorted(e["id"] for e in listed["events"]) == sorted(e["id"] for e in events)
    assert unsettled(listed["events"]) == []

    # docs/rules.md, rule 11: the changes are logged as coming from Stripe, each naming one of the history's events
    ids = {e["id"] for e in events}
    assert found["activity"]
    assert all(a["origin"] == "stripe" and a["stripe_event_id"] in ids for a in found["activity"])


def test_replaying_the_whole_history_changes_nothing(send, admin, run_worker, profile, stripe_api):
    events, finals = _history(OLD)
    stripe_api.put(*finals)
    send(*events)
    before = profile(CUS)

    for evt in reversed(events):
        assert admin("POST", f"/events/{evt['id']}/replay")[0] == 202
    run_worker()

    assert profile(CUS) == before
    assert _comparable(before) == EXPECTED
