"""Purchases, end to end (signed POST → ledger → RQ worker → profile): docs/rules.md, rules 6, 7 and 11.

Objects are built by tests/stripe_events.py from the supabase stripe-sync-engine fixtures
(charge_succeeded.json, checkout_session_completed.json, payment_intent_succeeded.json,
invoice_paid.json, subscription_created.json, customer_updated.json) and, for basil, from
openapi/fixtures3.json at HEAD.
"""
from __future__ import annotations

import pytest

from tests.stripe_events import (
    API_VERSIONS,
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
from tests.support import load_fixture

CUS = "cus_PurchaseBuyer01"
EMAIL, NAME = "ada@example.com", "Ada Lovelace"
COURSE = "course_python_101"


@pytest.fixture
def buyer(stripe_api):
    """The buyer exists in Stripe (the workers may fetch it)."""
    obj = customer(CUS, email=EMAIL, name=NAME)
    stripe_api.put(obj)
    return obj


def _only_payment(profile_json):
    assert len(profile_json["payments"]) == 1, profile_json["payments"]
    return profile_json["payments"][0]


def _assert_stripe_activity(profile_json, events):
    """Rule 9: the changes were logged, from Stripe, naming events we sent."""
    ids = {e["id"] for e in events}
    assert profile_json["activity"], "no activity entry for the changes"
    for entry in profile_json["activity"]:
        assert entry["origin"] == "stripe"
        assert entry["stripe_event_id"] in ids
        assert entry["kind"] and entry["message"] and entry["at"]


# --- checkout.session.completed ------------------------------------------------------------------

def _payment_mode_purchase(course=COURSE, version=OLD):
    ch = charge("ch_PurchaseCharge01", customer=CUS, amount=4900, created=T0, payment_intent="pi_Purchase01",
                api_version=version)
    pi = payment_intent("pi_Purchase01", customer=CUS, amount=4900, latest_charge=ch, created=T0 - 5,
                        metadata={"course_id": course} if course else {}, api_version=version)
    session = checkout_session("cs_test_Purchase01", customer=CUS, email=EMAIL, name=NAME, amount_total=4900,
                               payment_intent=pi["id"], metadata={"course_id": course} if course else {},
                               created=T0 - 60)
    return session, pi, ch


def test_checkout_session_creates_customer_payment_and_enrollment(send, profile, stripe_api, buyer):
    session, pi, ch = _payment_mode_purchase()
    stripe_api.put(pi, ch)
    completed = event("checkout.session.completed", session, created=T0 + 1)

    send(completed)

    found = profile(CUS)
    assert found is not None
    assert (found["name"], found["email"], found["account"], found["deleted_in_stripe"]) == (NAME, EMAIL, None, False)
    assert [(e["course_id"], e["access"], e["revoked_at"]) for e in found["enrollments"]] == [(COURSE, "active", None)]
    paid = _only_payment(found)
    assert (paid["stripe_payment_intent_id"], paid["course_id"], paid["amount"], paid["currency"]) == \
        (pi["id"], COURSE, 4900, "usd")
    _assert_stripe_activity(found, [completed])

    # the charge arrives by its own events: still one payment, now with its charge
    succeeded = event("charge.succeeded", ch, created=T0)
    pi_succeeded = event("payment_intent.succeeded", pi, created=T0)
    send(succeeded, pi_succeeded)

    found = profile(CUS)
    paid = _only_payment(found)
    assert paid == {
        "stripe_charge_id": ch["id"], "stripe_payment_intent_id": pi["id"], "stripe_invoice_id": None,
        "stripe_subscription_id": None, "course_id": COURSE, "amount": 4900, "currency": "usd",
        "amount_refunded": 0, "status": "succeeded", "created": iso(ch["created"]), "refunds": [],
    }
    assert len(found["enrollments"]) == 1
    _assert_stripe_activity(found, [completed, succeeded, pi_succeeded])


def test_checkout_session_delivered_twice_has_one_effect(send, again, profile, stripe_api, buyer):
    session, pi, ch = _payment_mode_purchase()
    stripe_api.put(pi, ch)
    events = [event("checkout.session.completed", session, created=T0 + 1), event("charge.succeeded", ch, created=T0)]
    send(*events)
    before = profile(CUS)

    again(*events)

    assert profile(CUS) == before
    assert len(before["payments"]) == 1 and len(before["enrollments"]) == 1


def test_checkout_session_after_its_charge_changes_nothing_back(send, profile, stripe_api, buyer):
    """Older snapshot after newer: the refunded charge stays refunded when the session arrives late."""
    session, pi, ch = _payment_mode_purchase()
    re1 = refund("re_PurchaseLate01", charge=ch["id"], amount=900, created=T0 + DAY, payment_intent=pi["id"])
    refunded = charge(ch["id"], customer=CUS, amount=4900, created=T0, payment_intent=pi["id"], refunds=[re1])
    stripe_api.put(pi, refunded)

    send(event("charge.refunded", refunded, created=T0 + DAY), event("refund.created", re1, created=T0 + DAY))
    send(event("checkout.session.completed", session, created=T0 + 1), event("charge.succeeded", ch, created=T0))

    paid = _only_payment(profile(CUS))
    assert (paid["amount_refunded"], paid["status"], paid["course_id"]) == (900, "partially_refunded", COURSE)
    assert [r["stripe_refund_id"] for r in paid["refunds"]] == [re1["id"]]


def test_purchase_without_course_records_payment_and_no_enrollment(send, profile, stripe_api, buyer):
    session, pi, ch = _payment_mode_purchase(course=None)
    stripe_api.put(pi, ch)

    send(event("checkout.session.completed", session, created=T0 + 1), event("charge.succeeded", ch, created=T0),
         event("payment_intent.succeeded", pi, created=T0))

    found = profile(CUS)
    assert found["enrollments"] == []
    paid = _only_payment(found)
    assert (paid["stripe_charge_id"], paid["course_id"], paid["status"]) == (ch["id"], None, "succeeded")


def test_subscription_checkout_takes_the_course_from_the_subscription(send, profile, stripe_api, buyer):
    # mode=subscription as in pay-rails checkout.session.completed.json; the course is on the subscription only
    sub = subscription("sub_PurchaseSub01", customer=CUS, created=T0, metadata={"course_id": COURSE})
    ch = charge("ch_PurchaseSubCh01", customer=CUS, amount=4900, created=T0, payment_intent="pi_PurchaseSub01",
                invoice="in_PurchaseSub01")
    inv = invoice("in_PurchaseSub01", customer=CUS, subscription=sub["id"], amount_paid=4900, charge=ch["id"],
                  payment_intent="pi_PurchaseSub01", created=T0, subscription_metadata={"course_id": COURSE})
    session = checkout_session("cs_test_PurchaseSub01", customer=CUS, email=EMAIL, name=NAME, amount_total=4900,
                               mode="subscription", subscription=sub["id"], invoice=inv["id"], created=T0 - 30)
    stripe_api.put(sub, ch, inv)

    send(event("checkout.session.completed", session, created=T0 + 2),
         event("customer.subscription.created", sub, created=T0),
         event("invoice.paid", inv, created=T0 + 1), event("charge.succeeded", ch, created=T0))

    found = profile(CUS)
    assert [(e["course_id"], e["access"]) for e in found["enrollments"]] == [(COURSE, "active")]
    paid = _only_payment(found)
    assert (paid["stripe_charge_id"], paid["stripe_invoice_id"], paid["stripe_subscription_id"], paid["course_id"]) \
        == (ch["id"], inv["id"], sub["id"], COURSE)
    assert [(s["stripe_subscription_id"], s["course_id"], s["status"]) for s in found["subscriptions"]] == \
        [(sub["id"], COURSE, "active")]


def test_real_dj_stripe_session_fixture_is_applied(send, profile, stripe_api):
    # dj-stripe FAKE_EVENT_SESSION_COMPLETED.json (api 2020-08-27, mode null, no course)
    completed = load_fixture("events/dj-stripe_dj-stripe__tests____init__.py__FAKE_EVENT_SESSION_COMPLETED.json")
    cus = completed["data"]["object"]["customer"]
    stripe_api.put(customer(cus, email="dj@example.com", name="Dj Stripe"))

    send(completed)

    found = profile(cus)
    assert found is not None and found["enrollments"] == []
    assert all(p["course_id"] is None for p in found["payments"])


# --- charge.succeeded / charge.failed ------------------------------------------------------------

def test_charge_succeeded_for_an_unknown_customer_fetches_it(send, profile, stripe_api, buyer):
    ch = charge("ch_PurchaseDirect01", customer=CUS, amount=2500, created=T0, metadata={"course_id": COURSE})
    succeeded = event("charge.succeeded", ch, created=T0)

    send(succeeded)

    assert [c["account"] for c in stripe_api.calls_to(f"/v1/customers/{CUS}")] != []
    assert all(c["account"] is None for c in stripe_api.calls_to(f"/v1/customers/{CUS}"))
    found = profile(CUS)
    assert (found["name"], found["email"]) == (NAME, EMAIL)
    paid = _only_payment(found)
    assert (paid["stripe_charge_id"], paid["amount"], paid["course_id"], paid["status"], paid["created"]) == \
        (ch["id"], 2500, COURSE, "succeeded", iso(T0))
    assert [(e["course_id"], e["access"]) for e in found["enrollments"]] == [(COURSE, "active")]
    _assert_stripe_activity(found, [succeeded])


def test_charge_succeeded_delivered_twice_has_one_effect(send, again, profile, buyer):
    succeeded = event("charge.succeeded", charge("ch_PurchaseTwice01", customer=CUS, amount=2500, created=T0,
                                                 metadata={"course_id": COURSE}), created=T0)
    send(succeeded)
    before = profile(CUS)

    again(succeeded)

    assert profile(CUS) == before


def test_charge_succeeded_after_charge_refunded_does_not_regress(send, profile, buyer):
    re1 = refund("re_PurchaseOld01", charge="ch_PurchaseOld01", amount=2500, created=T0 + 60)
    newer = charge("ch_PurchaseOld01", customer=CUS, amount=2500, created=T0, refunds=[re1],
                   metadata={"course_id": COURSE})
    older = charge("ch_PurchaseOld01", customer=CUS, amount=2500, created=T0, metadata={"course_id": COURSE})

    send(event("charge.refunded", newer, created=T0 + 60))
    send(event("charge.succeeded", older, created=T0))

    found = profile(CUS)
    paid = _only_payment(found)
    assert (paid["amount_refunded"], paid["status"]) == (2500, "refunded")
    assert [(e["course_id"], e["access"]) for e in found["enrollments"]] == [(COURSE, "active")]  # docs/rules.md, rule 1


def test_charge_failed_records_a_failed_payment_and_no_access(send, again, profile, buyer):
    # charge shaped like supabase charge_failed.json
    failed = event("charge.failed", charge("ch_PurchaseFail01", customer=CUS, amount=4900, created=T0,
                                           status="failed", metadata={"course_id": COURSE}), created=T0)
    send(failed)
    found = profile(CUS)

    again(failed)

    assert profile(CUS) == found
    paid = _only_payment(found)
    assert (paid["stripe_charge_id"], paid["status"], paid["amount_refunded"]) == ("ch_PurchaseFail01", "failed", 0)
    assert found["enrollments"] == []


def test_failed_charge_then_successful_retry_in_either_order(send, profile, buyer):
    failed = event("charge.failed", charge("ch_PurchaseRetry1", customer=CUS, amount=4900, created=T0,
                                           status="failed", metadata={"course_id": COURSE},
                                           payment_intent="pi_PurchaseRetry"), created=T0)
    retried = event("charge.succeeded", charge("ch_PurchaseRetry2", customer=CUS, amount=4900, created=T0 + 30,
                                               metadata={"course_id": COURSE}, payment_intent="pi_PurchaseRetry"),
                    created=T0 + 30)

    send(retried)
    send(failed)

    found = profile(CUS)
    assert sorted((p["stripe_charge_id"], p["status"]) for p in found["payments"]) == \
        [("ch_PurchaseRetry1", "failed"), ("ch_PurchaseRetry2", "succeeded")]
    assert [(e["course_id"], e["access"]) for e in found["enrollments"]] == [(COURSE, "active")]


def test_real_supabase_charge_failed_fixture(send, profile, stripe_api):
    # supabase charge_failed.json
    failed = load_fixture("events/supabase_stripe-sync-engine__packages__fastify-app__src__test__stripe__"
                          "charge_failed.json")
    obj = failed["data"]["object"]
    stripe_api.put(customer(obj["customer"], email="sb@example.com", name="Supa Base"))

    send(failed)

    paid = _only_payment(profile(obj["customer"]))
    assert (paid["stripe_charge_id"], paid["status"], paid["amount"]) == (obj["id"], "failed", obj["amount"])


# --- invoice.paid / invoice.payment_succeeded ------------------------------------------------------

@pytest.mark.parametrize("type_", ["invoice.paid", "invoice.payment_succeeded"])
@pytest.mark.parametrize("version", [OLD, "2023-10-16", BASIL])
def test_invoice_payment_records_the_purchase(send, again, profile, stripe_api, buyer, type_, version):
    sub = subscription("sub_PurchaseInv01", customer=CUS, created=T0, metadata={"course_id": COURSE},
                       api_version=version)
    ch = charge("ch_PurchaseInv01", customer=CUS, amount=4900, created=T0, payment_intent="pi_PurchaseInv01",
                invoice="in_PurchaseInv01", api_version=version)
    pi = payment_intent("pi_PurchaseInv01", customer=CUS, amount=4900, latest_charge=ch, created=T0 - 2,
                        api_version=version)
    inv = invoice("in_PurchaseInv01", customer=CUS, subscription=sub["id"], amount_paid=4900, charge=ch["id"],
                  payment_intent=pi["id"], created=T0, subscription_metadata={"course_id": COURSE},
                  api_version=version)
    stripe_api.put(sub, ch, pi, inv)
    paid_event = event(type_, inv, created=T0 + 1, api_version=version)

    send(paid_event)

    found = profile(CUS)
    assert (found["name"], found["email"]) == (NAME, EMAIL)
    assert [(e["course_id"], e["access"]) for e in found["enrollments"]] == [(COURSE, "active")]
    paid = _only_payment(found)
    assert (paid["stripe_invoice_id"], paid["stripe_subscription_id"], paid["course_id"], paid["amount"]) == \
        (inv["id"], sub["id"], COURSE, 4900)

    charge_event = event("charge.succeeded", ch, created=T0, api_version=version)
    send(charge_event)
    again(paid_event, charge_event)

    found = profile(CUS)
    paid = _only_payment(found)
    assert (paid["stripe_charge_id"], paid["stripe_payment_intent_id"], paid["stripe_invoice_id"],
            paid["stripe_subscription_id"], paid["course_id"], paid["status"]) == \
        (ch["id"], pi["id"], inv["id"], sub["id"], COURSE, "succeeded")
    assert len(found["enrollments"]) == 1


def test_invoice_for_an_unknown_subscription_fetches_it_for_the_course(send, profile, stripe_api, buyer):
    """The invoice itself names no course (old shape: no subscription_details); its subscription does."""
    sub = subscription("sub_PurchaseInvFetch", customer=CUS, created=T0, metadata={"course_id": COURSE})
    ch = charge("ch_PurchaseInvFetch", customer=CUS, amount=4900, created=T0, invoice="in_PurchaseInvFetch")
    inv = invoice("in_PurchaseInvFetch", customer=CUS, subscription=sub["id"], amount_paid=4900, charge=ch["id"],
                  created=T0, subscription_metadata={})
    stripe_api.put(sub, ch, inv)

    send(event("invoice.paid", inv, created=T0 + 1))

    assert stripe_api.calls_to(f"/v1/subscriptions/{sub['id']}")
    found = profile(CUS)
    assert _only_payment(found)["course_id"] == COURSE
    assert [(e["course_id"], e["access"]) for e in found["enrollments"]] == [(COURSE, "active")]


def test_invoice_paid_and_payment_succeeded_for_one_invoice_make_one_payment(send, profile, stripe_api, buyer):
    ch = charge("ch_PurchaseInv02", customer=CUS, amount=4900, created=T0, invoice="in_PurchaseInv02")
    sub = subscription("sub_PurchaseInv02", customer=CUS, created=T0, metadata={"course_id": COURSE})
    inv = invoice("in_PurchaseInv02", customer=CUS, subscription=sub["id"], amount_paid=4900, charge=ch["id"],
                  created=T0, subscription_metadata={"course_id": COURSE})
    stripe_api.put(sub, ch, inv)

    # Stripe sends both types for one payment, in the same second
    send(event("invoice.payment_succeeded", inv, created=T0 + 1), event("invoice.paid", inv, created=T0 + 1),
         event("charge.succeeded", ch, created=T0))

    found = profile(CUS)
    assert _only_payment(found)["stripe_charge_id"] == ch["id"]
    assert len(found["enrollments"]) == 1


def test_invoice_paid_after_its_charge_was_refunded_does_not_regress(send, profile, stripe_api, buyer):
    re1 = refund("re_PurchaseInv03", charge="ch_PurchaseInv03", amount=4900, created=T0 + DAY)
    ch = charge("ch_PurchaseInv03", customer=CUS, amount=4900, created=T0, invoice="in_PurchaseInv03", refunds=[re1])
    sub = subscription("sub_PurchaseInv03", customer=CUS, created=T0, metadata={"course_id": COURSE})
    inv = invoice("in_PurchaseInv03", customer=CUS, subscription=sub["id"], amount_paid=4900, charge=ch["id"],
                  created=T0, subscription_metadata={"course_id": COURSE})
    stripe_api.put(sub, ch, inv)

    send(event("charge.refunded", ch, created=T0 + DAY), event("refund.created", re1, created=T0 + DAY))
    send(event("invoice.paid", inv, created=T0 + 1))

    found = profile(CUS)
    paid = _only_payment(found)
    assert (paid["status"], paid["amount_refunded"], paid["stripe_invoice_id"]) == ("refunded", 4900, inv["id"])


# --- payment_intent.succeeded ------------------------------------------------------------------

@pytest.mark.parametrize("version", API_VERSIONS)
def test_payment_intent_succeeded_records_the_purchase(send, again, profile, stripe_api, buyer, version):
    ch = charge("ch_PurchasePi01", customer=CUS, amount=1500, created=T0, payment_intent="pi_PurchasePi01",
                api_version=version)
    pi = payment_intent("pi_PurchasePi01", customer=CUS, amount=1500, latest_charge=ch, created=T0 - 3,
                        metadata={"course_id": COURSE}, api_version=version)
    stripe_api.put(ch, pi)
    succeeded = event("payment_intent.succeeded", pi, created=T0, api_version=version)

    send(succeeded)
    before = profile(CUS)
    again(succeeded)

    found = profile(CUS)
    assert found == before
    paid = _only_payment(found)
    assert (paid["stripe_charge_id"], paid["stripe_payment_intent_id"], paid["course_id"], paid["amount"],
            paid["status"]) == (ch["id"], pi["id"], COURSE, 1500, "succeeded")
    assert [(e["course_id"], e["access"]) for e in found["enrollments"]] == [(COURSE, "active")]
    _assert_stripe_activity(found, [succeeded])


def test_payment_intent_succeeded_after_refund_does_not_regress(send, profile, stripe_api, buyer):
    re1 = refund("re_PurchasePi02", charge="ch_PurchasePi02", amount=500, created=T0 + DAY,
                 payment_intent="pi_PurchasePi02")
    ch_then = charge("ch_PurchasePi02", customer=CUS, amount=1500, created=T0, payment_intent="pi_PurchasePi02")
    ch_now = charge("ch_PurchasePi02", customer=CUS, amount=1500, created=T0, payment_intent="pi_PurchasePi02",
                    refunds=[re1])
    pi = payment_intent("pi_PurchasePi02", customer=CUS, amount=1500, latest_charge=ch_then, created=T0 - 3,
                        metadata={"course_id": COURSE})
    stripe_api.put(ch_now, pi)

    send(event("charge.refunded", ch_now, created=T0 + DAY), event("refund.created", re1, created=T0 + DAY))
    send(event("payment_intent.succeeded", pi, created=T0), event("charge.succeeded", ch_then, created=T0))

    paid = _only_payment(profile(CUS))
    assert (paid["amount_refunded"], paid["status"], paid["course_id"]) == (500, "partially_refunded", COURSE)


# --- waiting on Stripe -----------------------------------------------------------------------------

def _event_status(admin, event_id):
    status, body = admin("GET", f"/events/{event_id}")
    assert status == 200
    return body


def test_unknown_customer_while_the_api_is_down_waits_then_applies(send, admin, run_worker, profile, stripe_api,
                                                                    buyer):
    succeeded = event("charge.succeeded", charge("ch_PurchaseWait01", customer=CUS, amount=2500, created=T0,
                                                 metadata={"course_id": COURSE}), created=T0)
    stripe_api.down = True

    send(succeeded)

    stored = _event_status(admin, succeeded["id"])
    assert stored["status"] == "waiting"
    assert stored["last_error"]
    assert profile(CUS) is None or profile(CUS)["payments"] == []
    status, listed = admin("GET", "/events?status=waiting")
    assert [e["id"] for e in listed["events"]] == [succeeded["id"]]

    stripe_api.down = False
    status, _ = admin("POST", f"/events/{succeeded['id']}/replay")
    assert status == 202
    run_worker()

    assert _event_status(admin, succeeded["id"])["status"] == "processed"
    found = profile(CUS)
    assert (found["name"], found["email"]) == (NAME, EMAIL)
    assert _only_payment(found)["stripe_charge_id"] == "ch_PurchaseWait01"
    assert [e["course_id"] for e in found["enrollments"]] == [COURSE]


def test_event_waiting_for_a_charge_is_applied_when_the_charge_arrives(send, admin, run_worker, profile,
                                                                       stripe_api, buyer):
    send(event("charge.succeeded", charge("ch_PurchaseKnown01", customer=CUS, amount=100, created=T0 - DAY),
               created=T0 - DAY))
    ch = charge("ch_PurchaseWait02", customer=CUS, amount=4900, created=T0, metadata={"course_id": COURSE})
    re1 = refund("re_PurchaseWait02", charge=ch["id"], amount=1000, created=T0 + 60)
    early_refund = event("refund.created", re1, created=T0 + 60)
    stripe_api.down = True

    send(early_refund)
    stored = _event_status(admin, early_refund["id"])
    assert stored["status"] == "waiting" and stored["last_error"]

    send(event("charge.succeeded", ch, created=T0))  # the charge arrives by its own event
    if _event_status(admin, early_refund["id"])["status"] != "processed":
        assert admin("POST", f"/events/{early_refund['id']}/replay")[0] == 202
        run_worker()

    assert _event_status(admin, early_refund["id"])["status"] == "processed"
    paid = next(p for p in profile(CUS)["payments"] if p["stripe_charge_id"] == ch["id"])
    assert (paid["amount_refunded"], paid["status"]) == (1000, "partially_refunded")
    assert [r["stripe_refund_id"] for r in paid["refunds"]] == [re1["id"]]
