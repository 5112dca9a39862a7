"""Refunds, end to end: docs/rules.md rule 1, the payment's amount_refunded/status and rule 11.

Refunds are kept per refund id: partial refunds add up, a refund that ends failed or canceled gives
its amount back, and the payment's status follows succeeded → partially_refunded → refunded.
Refunds never touch access. Objects from tests/stripe_events.py (supabase refund_created.json,
charge_succeeded.json) unless a test names a real fixture.
"""
from __future__ import annotations

import pytest

from tests.stripe_events import DAY, OLD, T0, V2022, charge, customer, event, iso, refund
from tests.support import load_fixture

CUS = "cus_RefundBuyer01"
COURSE = "course_refunds"
CH = "ch_RefundCharge01"
SUPABASE = "events/supabase_stripe-sync-engine__packages__fastify-app__src__test__stripe__{}.json"


@pytest.fixture
def purchased(send, stripe_api):
    """A 4900 usd charge for COURSE, applied; returns a function that makes the charge with refunds."""
    stripe_api.put(customer(CUS, email="refunds@example.com", name="Re Fund"))

    def charge_with(*refunds, api_version=OLD):
        return charge(CH, customer=CUS, amount=4900, created=T0, metadata={"course_id": COURSE},
                      refunds=list(refunds), api_version=api_version)

    stripe_api.put(charge_with())
    send(event("charge.succeeded", charge_with(), created=T0))
    return charge_with


def _payment(profile, ch_id=CH, cus=CUS, account=None):
    found = profile(cus, account)
    return next(p for p in found["payments"] if p["stripe_charge_id"] == ch_id)


def _refunds(payment):
    return {r["stripe_refund_id"]: (r["amount"], r["status"]) for r in payment["refunds"]}


def _access(profile, cus=CUS):
    return [(e["course_id"], e["access"], e["revoked_at"]) for e in profile(cus)["enrollments"]]


def test_charge_refunded_records_each_refund_and_never_touches_access(send, again, profile, purchased):
    re1 = refund("re_RefundA1", charge=CH, amount=1000, created=T0 + DAY, reason="requested_by_customer")
    refunded = event("charge.refunded", purchased(re1), created=T0 + DAY)

    send(refunded)
    before = profile(CUS)
    again(refunded)

    assert profile(CUS) == before
    paid = _payment(profile)
    assert (paid["amount"], paid["amount_refunded"], paid["status"]) == (4900, 1000, "partially_refunded")
    assert paid["refunds"] == [{"stripe_refund_id": "re_RefundA1", "amount": 1000, "status": "succeeded",
                                "reason": "requested_by_customer", "origin": "stripe"}]
    assert _access(profile) == [(COURSE, "active", None)]
    assert any(a["stripe_event_id"] == refunded["id"] and a["origin"] == "stripe" for a in before["activity"])


def test_status_follows_succeeded_partially_refunded_refunded(send, profile, purchased):
    assert _payment(profile)["status"] == "succeeded"
    re1 = refund("re_RefundB1", charge=CH, amount=1000, created=T0 + DAY)
    re2 = refund("re_RefundB2", charge=CH, amount=1500, created=T0 + 2 * DAY)
    re3 = refund("re_RefundB3", charge=CH, amount=2400, created=T0 + 3 * DAY)

    send(event("refund.created", re1, created=T0 + DAY))
    assert (_payment(profile)["amount_refunded"], _payment(profile)["status"]) == (1000, "partially_refunded")
    send(event("refund.created", re2, created=T0 + 2 * DAY))
    assert (_payment(profile)["amount_refunded"], _payment(profile)["status"]) == (2500, "partially_refunded")
    send(event("refund.created", re3, created=T0 + 3 * DAY))

    paid = _payment(profile)
    assert (paid["amount_refunded"], paid["status"]) == (4900, "refunded")
    assert _refunds(paid) == {"re_RefundB1": (1000, "succeeded"), "re_RefundB2": (1500, "succeeded"),
                              "re_RefundB3": (2400, "succeeded")}
    assert _access(profile) == [(COURSE, "active", None)]


def test_refund_created_delivered_twice_counts_once(send, again, profile, purchased):
    created = event("refund.created", refund("re_RefundC1", charge=CH, amount=700, created=T0 + DAY),
                    created=T0 + DAY)
    send(created)
    before = profile(CUS)

    again(created)

    assert profile(CUS) == before
    assert _payment(profile)["amount_refunded"] == 700


def test_one_refund_seen_by_three_event_types_counts_once(send, profile, purchased):
    re1 = refund("re_RefundD1", charge=CH, amount=1200, created=T0 + DAY)

    # Stripe sends these in the same second for one refund
    send(event("charge.refunded", purchased(re1), created=T0 + DAY), event("refund.created", re1, created=T0 + DAY),
         event("charge.refund.updated", re1, created=T0 + DAY), event("refund.updated", re1, created=T0 + DAY))

    paid = _payment(profile)
    assert _refunds(paid) == {"re_RefundD1": (1200, "succeeded")}
    assert (paid["amount_refunded"], paid["status"]) == (1200, "partially_refunded")


@pytest.mark.parametrize("type_", ["refund.failed", "refund.updated", "charge.refund.updated"])
def test_failed_refund_gives_its_amount_back(send, again, profile, purchased, type_):
    ok = refund("re_RefundE1", charge=CH, amount=1000, created=T0 + DAY)
    doomed = refund("re_RefundE2", charge=CH, amount=1500, created=T0 + 2 * DAY)
    send(event("refund.created", ok, created=T0 + DAY), event("refund.created", doomed, created=T0 + 2 * DAY))
    assert _payment(profile)["amount_refunded"] == 2500

    failed = event(type_, refund(doomed["id"], charge=CH, amount=1500, created=T0 + 2 * DAY, status="failed"),
                   created=T0 + 4 * DAY)
    send(failed)
    before = profile(CUS)
    again(failed)

    assert profile(CUS) == before
    paid = _payment(profile)
    assert _refunds(paid) == {"re_RefundE1": (1000, "succeeded"), "re_RefundE2": (1500, "failed")}
    assert (paid["amount_refunded"], paid["status"]) == (1000, "partially_refunded")
    assert _access(profile) == [(COURSE, "active", None)]


def test_failed_refund_of_the_whole_amount_returns_to_succeeded(send, profile, purchased):
    whole = refund("re_RefundF1", charge=CH, amount=4900, created=T0 + DAY)
    send(event("charge.refunded", purchased(whole), created=T0 + DAY), event("refund.created", whole, created=T0 + DAY))
    assert _payment(profile)["status"] == "refunded"

    send(event("refund.failed", refund(whole["id"], charge=CH, amount=4900, created=T0 + DAY, status="failed"),
               created=T0 + 3 * DAY))

    paid = _payment(profile)
    assert (paid["amount_refunded"], paid["status"]) == (0, "succeeded")


def test_refund_created_after_refund_failed_does_not_regress(send, profile, purchased):
    """Older snapshot after newer: the failure stays."""
    re1 = refund("re_RefundG1", charge=CH, amount=2000, created=T0 + DAY)

    send(event("refund.failed", refund(re1["id"], charge=CH, amount=2000, created=T0 + DAY, status="failed"),
               created=T0 + 2 * DAY))
    send(event("refund.created", re1, created=T0 + DAY), event("charge.refunded", purchased(re1), created=T0 + DAY))

    paid = _payment(profile)
    assert _refunds(paid) == {"re_RefundG1": (2000, "failed")}
    assert (paid["amount_refunded"], paid["status"]) == (0, "succeeded")


def test_canceled_refund_gives_its_amount_back(send, profile, purchased):
    pending = refund("re_RefundH1", charge=CH, amount=900, created=T0 + DAY, status="pending")
    send(event("refund.created", pending, created=T0 + DAY))
    paid = _payment(profile)
    assert (paid["amount_refunded"], paid["status"]) == (900, "partially_refunded")  # pending counts

    send(event("refund.updated", refund(pending["id"], charge=CH, amount=900, created=T0 + DAY, status="canceled"),
               created=T0 + 2 * DAY))
    send(event("refund.created", pending, created=T0 + DAY))  # a late copy of the older snapshot under a new id

    paid = _payment(profile)
    assert _refunds(paid) == {"re_RefundH1": (900, "canceled")}
    assert (paid["amount_refunded"], paid["status"]) == (0, "succeeded")


def test_requires_action_and_pending_count_until_they_succeed(send, profile, purchased):
    send(event("refund.created", refund("re_RefundI1", charge=CH, amount=300, created=T0 + DAY,
                                        status="requires_action"), created=T0 + DAY),
         event("refund.created", refund("re_RefundI2", charge=CH, amount=400, created=T0 + DAY, status="pending"),
               created=T0 + DAY))
    assert _payment(profile)["amount_refunded"] == 700

    send(event("refund.updated", refund("re_RefundI1", charge=CH, amount=300, created=T0 + DAY), created=T0 + 2 * DAY),
         event("refund.updated", refund("re_RefundI2", charge=CH, amount=400, created=T0 + DAY), created=T0 + 2 * DAY))

    paid = _payment(profile)
    assert _refunds(paid) == {"re_RefundI1": (300, "succeeded"), "re_RefundI2": (400, "succeeded")}
    assert paid["amount_refunded"] == 700


def test_older_charge_refunded_after_newer_keeps_both_refunds(send, profile, purchased):
    re1 = refund("re_RefundJ1", charge=CH, amount=1000, created=T0 + DAY)
    re2 = refund("re_RefundJ2", charge=CH, amount=3900, created=T0 + 2 * DAY)

    send(event("charge.refunded", purchased(re1, re2), created=T0 + 2 * DAY))
    send(event("charge.refunded", purchased(re1), created=T0 + DAY))

    paid = _payment(profile)
    assert _refunds(paid) == {"re_RefundJ1": (1000, "succeeded"), "re_RefundJ2": (3900, "succeeded")}
    assert (paid["amount_refunded"], paid["status"]) == (4900, "refunded")
    assert _access(profile) == [(COURSE, "active", None)]


@pytest.mark.parametrize("version", [V2022, "2025-03-31.basil"])
def test_charge_refunded_without_refund_list_and_refund_created(send, profile, stripe_api, purchased, version):
    """Since 2022-11-15 charge.refunded carries no refund list: the refund comes by refund.created
    (or from the API, where it is available)."""
    re1 = refund("re_RefundK1", charge=CH, amount=1100, created=T0 + DAY)
    stripe_api.put(re1, purchased(re1, api_version=version))

    send(event("charge.refunded", purchased(re1, api_version=version), created=T0 + DAY, api_version=version),
         event("refund.created", re1, created=T0 + DAY, api_version=version))

    paid = _payment(profile)
    assert _refunds(paid) == {"re_RefundK1": (1100, "succeeded")}
    assert (paid["amount_refunded"], paid["status"]) == (1100, "partially_refunded")


def test_refund_for_an_unknown_charge_fetches_the_charge(send, profile, stripe_api):
    stripe_api.put(customer("cus_RefundUnknown", email="unknown@example.com", name="Un Known"))
    re1 = refund("re_RefundL1", charge="ch_RefundUnknown", amount=500, created=T0 + DAY)
    stripe_api.put(charge("ch_RefundUnknown", customer="cus_RefundUnknown", amount=2000, created=T0,
                          metadata={"course_id": COURSE}, refunds=[re1]), re1)

    send(event("refund.created", re1, created=T0 + DAY))

    assert stripe_api.calls_to("/v1/charges/ch_RefundUnknown")
    paid = _payment(profile, "ch_RefundUnknown", "cus_RefundUnknown")
    assert (paid["amount"], paid["amount_refunded"], paid["status"], paid["created"]) == \
        (2000, 500, "partially_refunded", iso(T0))
    assert _refunds(paid) == {"re_RefundL1": (500, "succeeded")}


def test_real_zulip_refund_that_fails_after_succeeding(send, profile, stripe_api):
    # zulip refund_event.json: charge.refund.updated, a 30000000 inr refund going succeeded → failed
    failed = load_fixture("events/zulip_zulip__zerver__webhooks__stripe__fixtures__refund_event.json")
    obj = failed["data"]["object"]
    cus = "cus_ZulipRefund01"
    ch = charge(obj["charge"], customer=cus, amount=obj["amount"], currency="inr", created=obj["created"] - 60,
                payment_intent=obj["payment_intent"])
    succeeded = refund(obj["id"], charge=obj["charge"], amount=obj["amount"], currency="inr", created=obj["created"],
                       payment_intent=obj["payment_intent"])
    stripe_api.put(customer(cus, email="zulip@example.com", name="Zu Lip"),
                   charge(ch["id"], customer=cus, amount=obj["amount"], currency="inr", created=ch["created"],
                          payment_intent=obj["payment_intent"], refunds=[obj]))
    send(event("charge.succeeded", ch, created=ch["created"]),
         event("refund.created", succeeded, created=obj["created"]))
    assert _payment(profile, ch["id"], cus)["status"] == "refunded"

    send(failed)
    send(event("charge.refunded", charge(ch["id"], customer=cus, amount=obj["amount"], currency="inr",
                                         created=ch["created"], payment_intent=obj["payment_intent"],
                                         refunds=[succeeded]), created=obj["created"]))

    paid = _payment(profile, ch["id"], cus)
    assert (paid["currency"], paid["amount_refunded"], paid["status"]) == ("inr", 0, "succeeded")
    assert _refunds(paid) == {obj["id"]: (obj["amount"], "failed")}


def test_real_supabase_refund_events_sharing_one_event_id(deliver, run_worker, profile, stripe_api):
    # supabase refund_created.json, refund_updated.json, refund_failed.json: hand-edited upstream, all three
    # carry the same event id and one refund object (refund.failed still says "succeeded"): the second and
    # third are duplicates of the first and change nothing.
    created, updated, failed = (load_fixture(SUPABASE.format(n)) for n in ("refund_created", "refund_updated",
                                                                           "refund_failed"))
    obj = created["data"]["object"]
    cus = "cus_SupabaseRefund"
    stripe_api.put(customer(cus, email="supa@example.com", name="Supa Refund"),
                   charge(obj["charge"], customer=cus, amount=5000, created=obj["created"] - 100,
                          payment_intent=obj["payment_intent"], refunds=[obj]))
    paid_charge = charge(obj["charge"], customer=cus, amount=5000, created=obj["created"] - 100,
                         payment_intent=obj["payment_intent"])
    assert deliver(event("charge.succeeded", paid_charge, created=obj["created"] - 100)).status_code == 200

    assert deliver(created).get_json() == {"received": True}
    assert deliver(updated).get_json() == {"received": True, "duplicate": True}
    assert deliver(failed).get_json() == {"received": True, "duplicate": True}
    run_worker()

    paid = _payment(profile, obj["charge"], cus)
    assert _refunds(paid) == {obj["id"]: (1000, "succeeded")}
    assert (paid["amount_refunded"], paid["status"]) == (1000, "partially_refunded")


def test_refunds_never_touch_the_subscription(send, profile, stripe_api, purchased):
    from tests.stripe_events import subscription

    sub = subscription("sub_RefundSub01", customer=CUS, created=T0, metadata={"course_id": COURSE})
    send(event("customer.subscription.created", sub, created=T0))
    before = profile(CUS)["subscriptions"]
    whole = refund("re_RefundM1", charge=CH, amount=4900, created=T0 + DAY)

    send(event("charge.refunded", purchased(whole), created=T0 + DAY), event("refund.created", whole, created=T0 + DAY))

    assert profile(CUS)["subscriptions"] == before
    assert _access(profile) == [(COURSE, "active", None)]


def test_refunds_read_from_the_expanded_charge_when_the_refund_list_is_not_served(send, profile, stripe_api):
    """A 2022-11-15+ charge.refunded carries no refund list; a Stripe stand-in without
    GET /v1/refunds?charge= still serves the charge with its refunds expanded."""
    charge_id, cus = "ch_ExpandOnly01", "cus_ExpandOnly01"
    refund_obj = {"id": "re_ExpandOnly01", "object": "refund", "amount": 700, "currency": "usd", "charge": charge_id,
                  "status": "succeeded", "reason": None, "metadata": {}}
    charge_obj = {"id": charge_id, "object": "charge", "amount": 4900, "currency": "usd", "customer": cus,
                  "status": "succeeded", "created": 1700000000, "amount_refunded": 700, "metadata": {},
                  "billing_details": {}, "payment_intent": None}
    stripe_api.put({"id": cus, "object": "customer", "name": "Exp", "email": "exp@example.com"})
    expanded = dict(charge_obj, refunds={"object": "list", "data": [refund_obj], "has_more": False})
    # the refund list comes back empty here (the fake knows this refund only inside its charge)
    stripe_api.put(expanded)
    event = {"id": "evt_ExpandOnly01", "object": "event", "type": "charge.refunded", "created": 1700000100,
             "api_version": "2024-06-20", "data": {"object": charge_obj}}
    send(event)
    found = profile(cus)
    [payment] = found["payments"]
    assert (payment["amount_refunded"], payment["status"]) == (700, "partially_refunded")
    assert [r["stripe_refund_id"] for r in payment["refunds"]] == ["re_ExpandOnly01"]
