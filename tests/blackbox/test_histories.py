"""Rule 6 end to end: a realistic history on a connected account, delivered shuffled with duplicates
and retries, ends as Stripe's final state, for old, recent and basil API versions."""
from __future__ import annotations

import pytest

from tests.blackbox.helpers import check_subscription, expected_payment, payment_view, shuffled_with_duplicates
from tests.fake_stripe import BASIL
from tests.support import unsettled

ACCT = "acct_1BBCreatorA"


def play_history(fake):
    """purchase → partial refund → second refund that fails → subscribe → pause → resume →
    cancel at period end → canceled at period end; plus a namesake customer on the platform."""
    cus = fake.create_customer(ACCT, "Jenny Rosen", "jenny@example.com", cus_id="cus_BBjenny")
    charge = fake.buy_course(ACCT, cus["id"], 4900, "course_python")
    first = fake.refund(ACCT, charge["id"], 1000, reason="requested_by_customer")
    second = fake.refund(ACCT, charge["id"], 2000, status="pending")
    fake.settle_refund(ACCT, second["id"], "failed")
    sub, sub_charge = fake.subscribe(ACCT, cus["id"], 1500, "course_yoga")
    fake.update_subscription(ACCT, sub["id"], {"pause_collection": {"behavior": "void", "resumes_at": None}})
    fake.update_subscription(ACCT, sub["id"], {"pause_collection": None})
    fake.update_subscription(ACCT, sub["id"], {"cancel_at_period_end": True})
    fake.update_customer(ACCT, cus["id"], {"email": "jenny.rosen@example.com"})
    fake.cancel_subscription(ACCT, sub["id"], at=fake.period_end(sub))
    # Same customer id on the platform account: a different record that must stay untouched by ACCT's events.
    other = fake.create_customer(None, "Platform Jenny", "pj@example.com", cus_id="cus_BBjenny")
    other_charge = fake.buy_course(None, other["id"], 900, "course_platform")
    return cus, charge, (first, second), sub, sub_charge, other_charge


def check_final(svc, cus, charge, sub, sub_charge, other_charge):
    fake = svc.fake
    profile = svc.profile(cus["id"], ACCT)
    assert profile["account"] == ACCT
    assert (profile["name"], profile["email"]) == ("Jenny Rosen", "jenny.rosen@example.com")
    assert profile["deleted_in_stripe"] is False
    payments = {p["stripe_charge_id"]: p for p in profile["payments"]}
    assert set(payments) == {charge["id"], sub_charge["id"]}
    for ch_id in payments:
        assert payment_view(payments[ch_id]) == expected_payment(fake, ACCT, ch_id), ch_id
    assert payments[charge["id"]]["course_id"] == "course_python"
    assert payments[sub_charge["id"]]["course_id"] == "course_yoga"
    assert payments[sub_charge["id"]]["stripe_subscription_id"] == sub["id"]
    assert payments[charge["id"]]["stripe_payment_intent_id"] == charge["payment_intent"]
    assert all(r["origin"] == "stripe" for p in payments.values() for r in p["refunds"])
    # Refunds, pauses and cancellations never take access away.
    assert sorted((e["course_id"], e["access"]) for e in profile["enrollments"]) == [
        ("course_python", "active"), ("course_yoga", "active")]
    assert len(profile["subscriptions"]) == 1
    assert profile["subscriptions"][0]["course_id"] == "course_yoga"
    check_subscription(fake, ACCT, profile["subscriptions"][0])
    assert profile["activity"], "every change writes activity"
    assert all(a["origin"] == "stripe" and a["stripe_event_id"] for a in profile["activity"])

    platform = svc.profile(cus["id"])
    assert platform["account"] is None
    assert (platform["name"], platform["email"]) == ("Platform Jenny", "pj@example.com")
    assert [p["stripe_charge_id"] for p in platform["payments"]] == [other_charge["id"]]
    assert platform["subscriptions"] == []
    assert [e["course_id"] for e in platform["enrollments"]] == ["course_platform"]


CASES = [("2020-03-02", 1), ("2020-03-02", 2), ("2024-06-20", 3), ("2024-06-20", 4),
         (BASIL, 5), (BASIL, 6), (BASIL, 7)]


@pytest.mark.parametrize("api_version,seed", CASES, ids=[f"{v}-seed{s}" for v, s in CASES])
def test_shuffled_history_with_duplicates_ends_as_stripe_final_state(svc, api_version, seed):
    svc.fake.reset(api_version)
    cus, charge, _, sub, sub_charge, other_charge = play_history(svc.fake)
    events = svc.fake.take_events()
    delivery = shuffled_with_duplicates(events, seed)
    seen = set()
    for event in delivery:
        r = svc.post_event(event)
        assert r.status_code == 200, (event["type"], r.status_code, r.text)
        if event["id"] in seen:
            assert r.json() == {"received": True, "duplicate": True}
        else:
            assert r.json() == {"received": True}
        seen.add(event["id"])
    ledger = svc.wait_settled(timeout=40)
    assert {e["id"] for e in ledger} == {e["id"] for e in events}  # each stored once
    assert not [e for e in ledger if e["status"] == "failed"], ledger
    check_final(svc, cus, charge, sub, sub_charge, other_charge)

    # Stripe's retries after everything was applied change nothing.
    for event in events[::3]:
        assert svc.post_event(event).json() == {"received": True, "duplicate": True}
    svc.wait_settled()
    check_final(svc, cus, charge, sub, sub_charge, other_charge)


def play_failed_renewal(fake):
    """A subscriber's renewal declined once (its own charge), recovered by a retry of the same payment intent,
    which is then partly refunded; a second renewal declined and never recovered (left past_due)."""
    cus = fake.create_customer(ACCT, "Ray Tried", "ray@example.com", cus_id="cus_BBray")
    sub, first = fake.subscribe(ACCT, cus["id"], 2500, "course_renewals")
    declined, retry = fake.renew(ACCT, sub["id"], failures=1)
    refund = fake.refund(ACCT, retry["id"], 500, reason="requested_by_customer")
    declined_again, _ = fake.renew(ACCT, sub["id"], failures=2, succeed=False)
    return cus, sub, first, declined + declined_again, retry, refund


RENEWAL_CASES = [("2020-03-02", 11), ("2024-06-20", 12), (BASIL, 13), (BASIL, 14)]


@pytest.mark.parametrize("api_version,seed", RENEWAL_CASES, ids=[f"{v}-seed{s}" for v, s in RENEWAL_CASES])
def test_failed_renewals_shuffled_keep_each_attempt_and_its_refund_apart(svc, api_version, seed):
    svc.fake.reset(api_version)
    cus, sub, first, declined, retry, refund = play_failed_renewal(svc.fake)
    events = svc.fake.take_events()
    for event in shuffled_with_duplicates(events, seed):
        assert svc.post_event(event).status_code == 200, event["type"]
    ledger = svc.wait_settled(timeout=40)
    assert unsettled(ledger) == []

    profile = svc.profile(cus["id"], ACCT)
    payments = {p["stripe_charge_id"]: p for p in profile["payments"]}
    assert set(payments) == {first["id"], retry["id"]} | {c["id"] for c in declined}
    for ch_id in (first["id"], retry["id"]):
        assert payment_view(payments[ch_id]) == expected_payment(svc.fake, ACCT, ch_id), ch_id
    assert [r["stripe_refund_id"] for r in payments[retry["id"]]["refunds"]] == [refund["id"]]
    for charge in declined:
        got = payments[charge["id"]]
        assert (got["status"], got["amount_refunded"], got["refunds"]) == ("failed", 0, []), charge["id"]
        assert (got["stripe_payment_intent_id"], got["stripe_subscription_id"], got["course_id"]) == (
            charge["payment_intent"], sub["id"], "course_renewals")
        assert got["stripe_invoice_id"] is not None
    assert payments[declined[0]["id"]]["stripe_invoice_id"] == payments[retry["id"]]["stripe_invoice_id"]
    assert [(s["status"], s["course_id"]) for s in profile["subscriptions"]] == [("past_due", "course_renewals")]
    assert [(e["course_id"], e["access"]) for e in profile["enrollments"]] == [("course_renewals", "active")]
