"""Basil: neither the charge nor the invoice names the other, and an invoice payload may lack
`payments`; invoice_payment.paid joins them, so one purchase is one payment in any order."""
import itertools
import random

import pytest

BASIL = "2025-03-31.basil"
T0 = 1764000000
CUS, SUB, INV, PI, CH = "cus_BasilLink01", "sub_BasilLink01", "in_BasilLink01", "pi_BasilLink01", "ch_BasilLink01"
COURSE = "course_basil_link"


def _event(n, type_, obj, created=T0):
    return {"id": f"evt_BasilLink{n:02d}", "object": "event", "api_version": BASIL, "created": created,
            "type": type_, "livemode": False, "data": {"object": obj}}


def _history():
    session = {"id": "cs_BasilLink01", "object": "checkout.session", "mode": "subscription", "customer": CUS,
               "subscription": SUB, "invoice": INV, "payment_status": "paid", "status": "complete",
               "amount_total": 2900, "currency": "usd", "created": T0,
               "customer_details": {"email": "basil@example.com", "name": "Basil"}, "metadata": {}}
    # basil invoice: no charge/payment_intent/subscription; the course rides on parent.subscription_details
    invoice = {"id": INV, "object": "invoice", "customer": CUS, "customer_email": "basil@example.com",
               "amount_paid": 2900, "currency": "usd", "status": "paid", "created": T0,
               "status_transitions": {"paid_at": T0},
               "parent": {"type": "subscription_details",
                          "subscription_details": {"subscription": SUB, "metadata": {"course_id": COURSE}}},
               "lines": {"object": "list", "data": []}}
    charge = {"id": CH, "object": "charge", "amount": 2900, "currency": "usd", "customer": CUS,
              "status": "succeeded", "payment_intent": PI, "created": T0, "amount_refunded": 0, "metadata": {},
              "billing_details": {"email": "basil@example.com", "name": "Basil"}}
    intent = {"id": PI, "object": "payment_intent", "customer": CUS, "amount": 2900, "amount_received": 2900,
              "currency": "usd", "status": "succeeded", "latest_charge": CH, "metadata": {}, "created": T0}
    link = {"id": "inpay_BasilLink01", "object": "invoice_payment", "invoice": INV, "amount_paid": 2900,
            "currency": "usd", "status": "paid", "payment": {"type": "payment_intent", "payment_intent": PI},
            "status_transitions": {"paid_at": T0}, "created": T0}
    return [_event(1, "checkout.session.completed", session), _event(2, "invoice.paid", invoice),
            _event(3, "charge.succeeded", charge), _event(4, "payment_intent.succeeded", intent),
            _event(5, "invoice_payment.paid", link)]


@pytest.mark.parametrize("order", list(itertools.islice(itertools.permutations(range(5)), 0, 120, 13)))
def test_one_purchase_is_one_payment_in_any_order(order, send, profile):
    history = _history()
    send(*[history[i] for i in order])
    send(history[random.Random(sum(order)).randrange(5)])  # a redelivery
    found = profile(CUS)
    [payment] = found["payments"]
    assert (payment["stripe_charge_id"], payment["stripe_payment_intent_id"], payment["stripe_invoice_id"]) == (
        CH, PI, INV)
    assert (payment["amount"], payment["status"], payment["course_id"]) == (2900, "succeeded", COURSE)
    assert [(e["course_id"], e["access"]) for e in found["enrollments"]] == [(COURSE, "active")]


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 2, 1, 0), (1, 3, 0, 2)])
def test_without_invoice_payment_paid_stripe_says_which_payment_intent_paid_the_invoice(order, send, profile,
                                                                                       stripe_api):
    history = _history()[:4]  # an endpoint that does not listen to invoice_payment.paid
    link = _history()[4]["data"]["object"]
    stripe_api.put({**link, "id": "inpay_BasilLink01x"})  # GET /v1/invoice_payments?invoice= lists it
    send(*[history[i] for i in order])
    found = profile(CUS)
    [payment] = found["payments"]
    assert (payment["stripe_charge_id"], payment["stripe_payment_intent_id"], payment["stripe_invoice_id"],
            payment["stripe_subscription_id"]) == (CH, PI, INV, SUB)
    assert (payment["amount"], payment["status"], payment["course_id"]) == (2900, "succeeded", COURSE)
