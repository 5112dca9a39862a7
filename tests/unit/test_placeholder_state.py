"""What a placeholder's payment intent or invoice says of its payment (reconciliation's `payment` kind),
across API versions, and how a charge is compared (workers/drift.py stripe_fields)."""
from __future__ import annotations

import pytest

from tests.stripe_events import charge, invoice, payment_intent
from tests.support import BASIL, OLD, V2024
from workers.drift import differences, stripe_fields
from workers.handlers.imports import placeholder_state


@pytest.mark.parametrize("version", [OLD, V2024])
def test_a_succeeded_intent_names_its_charge(version):
    paid = charge("ch_PS1", customer="cus_PS", amount=4900, payment_intent="pi_PS1", api_version=version)
    intent = payment_intent("pi_PS1", customer="cus_PS", amount=4900, latest_charge=paid, api_version=version)

    assert placeholder_state(intent) == {"stripe_charge_id": "ch_PS1", "status": "succeeded", "amount": 4900}


@pytest.mark.parametrize("status, ours", [("canceled", "failed"), ("requires_payment_method", "pending"),
                                          ("requires_action", "pending"), ("processing", "pending")])
def test_an_intent_that_did_not_succeed_names_no_charge(status, ours):
    intent = payment_intent("pi_PS2", customer="cus_PS", amount=2500, latest_charge=None, status=status,
                            api_version=V2024)
    intent["amount_received"] = 0

    assert placeholder_state(intent) == {"stripe_charge_id": None, "status": ours, "amount": 2500}


@pytest.mark.parametrize("status, ours, amount", [("paid", "succeeded", 1500), ("open", "pending", 1500),
                                                  ("draft", "pending", 1500), ("void", "failed", 1500),
                                                  ("uncollectible", "failed", 1500)])
def test_an_invoice_says_its_status_and_before_basil_its_charge(status, ours, amount):
    old = invoice("in_PS3", customer="cus_PS", subscription="sub_PS", amount_paid=1500 if status == "paid" else 0,
                  amount_due=1500, charge="ch_PS3", payment_intent="pi_PS3", status=status)
    basil = invoice("in_PS3", customer="cus_PS", subscription="sub_PS", amount_paid=1500 if status == "paid" else 0,
                    amount_due=1500, status=status, api_version=BASIL, include_payments=False)

    assert placeholder_state(old) == {"stripe_charge_id": "ch_PS3" if ours == "succeeded" else None,
                                      "status": ours, "amount": amount}
    assert placeholder_state(basil) == {"stripe_charge_id": None, "status": ours, "amount": amount}


def test_a_charge_compared_with_a_placeholder_drifts_in_its_charge_id_only():
    paid = charge("ch_PS4", customer="cus_PS", amount=4900, payment_intent="pi_PS4")
    placeholder = {"stripe_charge_id": None, "amount": 4900, "currency": "usd", "status": "succeeded",
                   "amount_refunded": 0}

    assert stripe_fields("charge", paid)["stripe_charge_id"] == "ch_PS4"
    assert differences("charge", paid, placeholder) == [
        {"object": "ch_PS4", "field": "stripe_charge_id", "local": None, "stripe": "ch_PS4", "fixed": False}]
    assert differences("charge", paid, {**placeholder, "stripe_charge_id": "ch_PS4"}) == []
