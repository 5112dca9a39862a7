"""Payments that fail or wait before they succeed (or never do), end to end.

- A retried renewal: the first charge of a payment intent fails (ch_1), the retry succeeds (ch_2) and is
  partly refunded. The refund belongs to the charge its payload names, even when it arrives before any
  event about that charge (it is fetched, docs/rules.md rule 7), never to another charge of the same payment intent.
- invoice.payment_failed gives a failed renewal charge its invoice, subscription and course.
- payment_intent.processing / .payment_failed give a delayed (ACH) purchase its course from the payment
  intent's metadata.

Objects from tests/stripe_events.py (supabase charge_failed.json / charge_succeeded.json /
refund_created.json / invoice_paid.json / payment_intent_*.json; basil shapes from openapi fixtures3.json).
"""
from __future__ import annotations

import itertools

import pytest

from tests.stripe_events import (
    BASIL,
    DAY,
    OLD,
    T0,
    V2024,
    charge,
    customer,
    event,
    invoice,
    invoice_payment,
    payment_intent,
    refund,
    subscription,
)
from tests.support import load_fixture

PAY_RAILS = "objects/pay-rails_pay__test__fixtures__files__stripe__{}.json"
VERSIONS = (OLD, V2024, BASIL)
ACCOUNTS = (None, "acct_1FailedAttempts")
CUS, SUB, INV, PI, CH1, CH2, RE = ("cus_Retry01", "sub_Retry01", "in_Retry02", "pi_Retry02", "ch_Retry02a",
                                   "ch_Retry02b", "re_Retry02")
COURSE = "course_renewals"
T1 = T0 + 30 * DAY  # the renewal


def _by_charge(found):
    return {p["stripe_charge_id"]: p for p in found["payments"]}


def _renewal(version):
    """The renewal's objects: ch_1 failed, ch_2 (a retry of the same payment intent) succeeded and was
    refunded 500; the invoice's failed attempt and its paid state."""
    md = {"course_id": COURSE}
    re = refund(RE, charge=CH2, amount=500, created=T1 + 2 * DAY, payment_intent=PI)
    ch1 = charge(CH1, customer=CUS, amount=4900, created=T1, payment_intent=PI, invoice=INV, status="failed",
                 api_version=version)
    ch2 = charge(CH2, customer=CUS, amount=4900, created=T1 + DAY, payment_intent=PI, invoice=INV,
                 api_version=version)
    ch2_refunded = charge(CH2, customer=CUS, amount=4900, created=T1 + DAY, payment_intent=PI, invoice=INV,
                          refunds=[re], api_version=version)
    failed = invoice(INV, customer=CUS, subscription=SUB, amount_paid=0, amount_due=4900, charge=CH1,
                     payment_intent=PI, created=T1, subscription_metadata=md, billing_reason="subscription_cycle",
                     status="open", api_version=version)
    sub = subscription(SUB, customer=CUS, created=T0, metadata=md, status="past_due", api_version=version)
    return {"re": re, "ch1": ch1, "ch2": ch2, "ch2_refunded": ch2_refunded, "failed": failed, "sub": sub}


@pytest.mark.parametrize("account", ACCOUNTS, ids=["platform", "connected"])
@pytest.mark.parametrize("version", VERSIONS)
def test_a_refund_lands_on_the_charge_it_names_not_an_earlier_attempt(send, profile, stripe_api, version,
                                                                       account):
    o = _renewal(version)
    stripe_api.put(customer(CUS, email="retry@example.com", name="Re Try"), o["ch1"], o["ch2_refunded"], o["re"],
                   o["sub"], account=account)
    at = {"account": account, "api_version": version}

    send(event("charge.failed", o["ch1"], created=T1, **at))
    send(event("refund.created", o["re"], created=T1 + 2 * DAY, **at))  # before any event about ch_2
    send(event("charge.succeeded", o["ch2"], created=T1 + DAY, **at),
         event("charge.refunded", o["ch2_refunded"], created=T1 + 2 * DAY, **at))

    payments = _by_charge(profile(CUS, account))
    assert set(payments) == {CH1, CH2}
    first, retry = payments[CH1], payments[CH2]
    assert (first["status"], first["amount_refunded"], first["refunds"]) == ("failed", 0, [])
    assert (retry["status"], retry["amount_refunded"]) == ("partially_refunded", 500)
    assert [(r["stripe_refund_id"], r["amount"], r["status"]) for r in retry["refunds"]] == [(RE, 500, "succeeded")]
    assert first["stripe_payment_intent_id"] == retry["stripe_payment_intent_id"] == PI


@pytest.mark.parametrize("order", [(0, 1), (1, 0)], ids=["charge-first", "invoice-first"])
@pytest.mark.parametrize("account", ACCOUNTS, ids=["platform", "connected"])
@pytest.mark.parametrize("version", VERSIONS)
def test_invoice_payment_failed_gives_the_failed_charge_its_invoice_subscription_and_course(
        send, profile, stripe_api, version, account, order):
    o = _renewal(version)
    stripe_api.put(customer(CUS, email="retry@example.com", name="Re Try"), o["ch1"], o["sub"], o["failed"],
                   account=account)
    at = {"account": account, "api_version": version}
    history = [event("charge.failed", o["ch1"], created=T1, **at),
               event("invoice.payment_failed", o["failed"], created=T1, **at)]

    send(*[history[i] for i in order])

    found = profile(CUS, account)
    [failed] = found["payments"]
    assert (failed["stripe_charge_id"], failed["status"], failed["amount"]) == (CH1, "failed", 4900)
    assert (failed["stripe_payment_intent_id"], failed["stripe_invoice_id"], failed["stripe_subscription_id"],
            failed["course_id"]) == (PI, INV, SUB, COURSE)
    assert found["enrollments"] == []  # a failed payment gives no access


def test_basil_invoice_payment_failed_without_its_payments_asks_stripe_which_payment_intent(
        send, profile, stripe_api):
    o = _renewal(BASIL)
    bare = invoice(INV, customer=CUS, subscription=SUB, amount_paid=0, amount_due=4900, payment_intent=PI,
                   created=T1, subscription_metadata={"course_id": COURSE}, billing_reason="subscription_cycle",
                   status="open", api_version=BASIL, include_payments=False)
    attempt = invoice_payment(INV, {"type": "payment_intent", "payment_intent": PI}, amount=4900, created=T1,
                              paid=False)
    stripe_api.put(customer(CUS, email="retry@example.com", name="Re Try"), o["ch1"], o["sub"], attempt)

    send(event("invoice.payment_failed", bare, created=T1, api_version=BASIL),
         event("charge.failed", o["ch1"], created=T1, api_version=BASIL))

    [failed] = profile(CUS)["payments"]
    assert (failed["stripe_charge_id"], failed["stripe_invoice_id"], failed["stripe_subscription_id"],
            failed["course_id"]) == (CH1, INV, SUB, COURSE)
    assert stripe_api.calls_to("/v1/invoice_payments")


ACH_CUS, ACH_PI, ACH_CH = "cus_Ach01", "pi_Ach01", "ch_Ach01"
ACH_COURSE = "course_ach"


def _ach(version, charge_status, intent_status):
    ch = charge(ACH_CH, customer=ACH_CUS, amount=19900, created=T0, payment_intent=ACH_PI, status=charge_status,
                api_version=version)
    pi = payment_intent(ACH_PI, customer=ACH_CUS, amount=19900, latest_charge=ch, created=T0,
                        metadata={"course_id": ACH_COURSE}, status=intent_status, api_version=version,
                        payment_method_type="us_bank_account")
    return ch, pi


@pytest.mark.parametrize("order", list(itertools.permutations(range(2))), ids=["charge-first", "intent-first"])
@pytest.mark.parametrize("account", ACCOUNTS, ids=["platform", "connected"])
@pytest.mark.parametrize("version", VERSIONS)
def test_an_ach_purchase_still_processing_has_its_course_and_no_access_yet(send, profile, stripe_api, version,
                                                                           account, order):
    ch, pi = _ach(version, "pending", "processing")
    stripe_api.put(customer(ACH_CUS, email="ach@example.com", name="A C H"), ch, pi, account=account)
    at = {"account": account, "api_version": version}
    history = [event("charge.pending", ch, created=T0, **at), event("payment_intent.processing", pi, created=T0, **at)]

    send(*[history[i] for i in order])

    found = profile(ACH_CUS, account)
    [pending] = found["payments"]
    assert (pending["stripe_charge_id"], pending["status"], pending["course_id"]) == (ACH_CH, "pending", ACH_COURSE)
    assert found["enrollments"] == []  # access comes when the debit settles


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
@pytest.mark.parametrize("account", ACCOUNTS, ids=["platform", "connected"])
@pytest.mark.parametrize("version", VERSIONS)
def test_an_ach_purchase_that_fails_keeps_its_course(send, profile, stripe_api, version, account, order):
    pending, processing = _ach(version, "pending", "processing")
    failed, intent_failed = _ach(version, "failed", "requires_payment_method")
    stripe_api.put(customer(ACH_CUS, email="ach@example.com", name="A C H"), failed, intent_failed,
                   account=account)
    at = {"account": account, "api_version": version}
    history = [event("charge.pending", pending, created=T0, **at),
               event("charge.failed", failed, created=T0 + 4 * DAY, **at),
               event("payment_intent.payment_failed", intent_failed, created=T0 + 4 * DAY, **at)]

    send(*[history[i] for i in order])

    found = profile(ACH_CUS, account)
    [payment] = found["payments"]
    assert (payment["stripe_charge_id"], payment["status"], payment["course_id"]) == (ACH_CH, "failed", ACH_COURSE)
    assert found["enrollments"] == []


def test_a_refund_an_earlier_release_put_on_the_wrong_attempt_moves_with_its_next_event(send, profile, stripe_api,
                                                                                        services):
    o = _renewal(OLD)
    stripe_api.put(customer(CUS, email="retry@example.com", name="Re Try"), o["ch1"], o["ch2_refunded"], o["re"])
    send(event("charge.failed", o["ch1"], created=T1), event("charge.succeeded", o["ch2"], created=T1 + DAY),
         event("refund.created", o["re"], created=T1 + 2 * DAY))
    with services.pool.connection() as conn:  # what the defect left: the refund on the failed attempt
        conn.execute("UPDATE refunds SET payment_id = (SELECT id FROM payments WHERE stripe_charge_id = %(c)s)"
                     " WHERE stripe_refund_id = %(r)s", {"c": CH1, "r": RE})
        conn.execute("UPDATE payments SET amount_refunded = 500 WHERE stripe_charge_id = %(c)s", {"c": CH1})

    send(event("charge.refund.updated", o["re"], created=T1 + 3 * DAY))

    payments = _by_charge(profile(CUS))
    assert (payments[CH1]["amount_refunded"], payments[CH1]["refunds"]) == (0, [])
    assert (payments[CH2]["status"], payments[CH2]["amount_refunded"]) == ("partially_refunded", 500)
    assert [r["stripe_refund_id"] for r in payments[CH2]["refunds"]] == [RE]


def test_real_basil_invoice_payment_failed_fixture_links_the_declined_charge(send, profile, stripe_api):
    """pay-rails' invoice.payment_failed (a live basil invoice: `payments` null, the subscription only in
    `parent.subscription_details`); Stripe's invoice_payments name its payment intent."""
    failed_invoice = load_fixture(PAY_RAILS.format("invoice.payment_failed"))["object"]
    in_id, sub_id, cus_id = failed_invoice["id"], "sub_1234", failed_invoice["customer"]
    declined = charge("ch_PayRails1234", customer=cus_id, amount=24900, created=failed_invoice["created"],
                      payment_intent="pi_PayRails1234", status="failed", api_version=BASIL)
    stripe_api.put(customer(cus_id, email="customer@example.org", name="Example Customer"), declined,
                   subscription(sub_id, customer=cus_id, status="past_due", metadata={"course_id": "course_yearly"},
                                api_version=BASIL),
                   invoice_payment(in_id, {"type": "payment_intent", "payment_intent": "pi_PayRails1234"},
                                   amount=24900, paid=False))

    send(event("invoice.payment_failed", failed_invoice, created=failed_invoice["created"], api_version=BASIL),
         event("charge.failed", declined, created=failed_invoice["created"], api_version=BASIL))

    [payment] = profile(cus_id)["payments"]
    assert (payment["stripe_charge_id"], payment["status"], payment["stripe_invoice_id"],
            payment["stripe_subscription_id"], payment["course_id"]) == (
        "ch_PayRails1234", "failed", in_id, sub_id, "course_yearly")
