"""Reconciliation and placeholders: payments we hold only under a payment intent or invoice id, because
the purchase's charge never reached us (a Checkout Session or an invoice said it was paid, its charge
events were lost).

A charge Stripe lists is compared with the placeholder it takes over (drift `stripe_charge_id`, never
`exists`), and the fix links the charge to it: one payment, never two. A placeholder no listed charge
matched is compared with its payment intent or invoice as Stripe answers it now (kind `payment`, drift
items whose object is the pi_/in_ id).
"""
from __future__ import annotations

import pytest

from tests.e2e.test_reconciliation import reconcile  # noqa: F401 (the fixture)
from tests.fake_stripe import DAY, T0
from tests.stripe_events import checkout_session, customer, event, invoice, payment_intent
from tests.support import BASIL, V2024
from workers import drift
from workers.commands import FixObject

ACCT = "acct_1PlaceholderCreator"


def _drift(report):
    return [{k: v for k, v in item.items() if k != "fixed"} for item in report["drift"]]


def _payments(services, account):
    with services.pool.connection() as conn:
        return conn.execute(
            "SELECT stripe_charge_id, stripe_payment_intent_id, stripe_invoice_id, stripe_subscription_id, course_id,"
            " charge_status, amount_refunded FROM payments WHERE account = %s ORDER BY id",
            (account or "",)).fetchall()


def _only(events, *types):
    return [e for e in events if e["type"] in types]


@pytest.mark.parametrize("account", [None, ACCT], ids=["platform", "connected"])
def test_a_charge_is_compared_with_its_placeholder_and_the_fix_links_them(services, stripe_api, send, reconcile,
                                                                          profile, account):
    stripe_api.reset(V2024, now=T0 + DAY)
    cus = stripe_api.create_customer(account, "Pia Holder", "pia@example.com", cus_id="cus_PlaceholderPia")
    paid = stripe_api.buy_course(account, cus["id"], 4900, "course_python")
    refund = stripe_api.refund(account, paid["id"], 1000)
    # only the customer and the Checkout Session reached us: the payment is a placeholder under its intent
    send(*_only(stripe_api.take_events(), "customer.created", "checkout.session.completed"))
    assert _payments(services, account) == [(None, paid["payment_intent"], None, None, "course_python", "succeeded", 0)]

    dry = reconcile(dry_run=True, **({"account": account} if account else {}))

    assert _drift(dry) == [
        {"object": paid["id"], "field": "stripe_charge_id", "local": None, "stripe": paid["id"]},
        {"object": paid["id"], "field": "amount_refunded", "local": 0, "stripe": 1000},
        {"object": refund["id"], "field": "exists", "local": False, "stripe": True},
    ]

    fixed = reconcile(**({"account": account} if account else {}))

    # the charge's fix (a page before the refunds) brought its refund too: no drift left when refunds come
    assert _drift(fixed) == _drift(dry)[:2] and all(item["fixed"] for item in fixed["drift"])
    assert _payments(services, account) == [
        (paid["id"], paid["payment_intent"], None, None, "course_python", "succeeded", 1000)]  # one payment
    assert [e["course_id"] for e in profile(cus["id"], account)["enrollments"]] == ["course_python"]
    assert reconcile(**({"account": account} if account else {}))["drift"] == []


def test_a_basil_invoice_placeholder_is_taken_over_by_its_charge(services, stripe_api, send, reconcile):
    """Basil: neither the charge nor its payment intent names the invoice. A renewal recorded while Stripe
    could not say which intent paid it waits under the invoice; the charge, which the comparison cannot tie
    to that invoice without asking Stripe (`exists`), is tied to it by the fix: one payment."""
    stripe_api.reset(BASIL, now=T0 + DAY)
    cus = stripe_api.create_customer(None, "Bas Il", "basil@example.com", cus_id="cus_PlaceholderBasil")
    sub, first = stripe_api.subscribe(None, cus["id"], 1500, "course_yoga")
    send(*stripe_api.take_events())
    _, renewal = stripe_api.renew(None, sub["id"], failures=0)
    [paid] = _only(stripe_api.take_events(), "invoice.paid")
    stripe_api.down = True  # GET /v1/invoice_payments fails: the payment is kept under the invoice
    send(paid)
    stripe_api.down = False
    in_id = paid["data"]["object"]["id"]
    assert _payments(services, None)[1] == (None, None, in_id, sub["id"], "course_yoga", "succeeded", 0)

    report = reconcile()

    assert _drift(report) == [{"object": renewal["id"], "field": "exists", "local": False, "stripe": True}]
    assert report["drift"][0]["fixed"] is True
    assert _payments(services, None) == [
        (first["id"], first["payment_intent"], first_invoice(stripe_api, first), sub["id"], "course_yoga",
         "succeeded", 0),
        (renewal["id"], renewal["payment_intent"], in_id, sub["id"], "course_yoga", "succeeded", 0)]
    assert reconcile()["drift"] == []


def first_invoice(stripe_api, charge):
    return next(o["invoice"] for (_, kind, _), o in stripe_api.objects.items()
                if kind == "invoice_payment" and o["payment"]["payment_intent"] == charge["payment_intent"])


CUS = "cus_PlaceholderNone"


def _never_charged(kind: str, status: str) -> tuple[dict, dict]:
    """A paid purchase as an event told it, and its payment intent / invoice as Stripe holds it now."""
    if kind == "payment_intent":
        told = checkout_session("cs_test_PlaceholderNone", customer=CUS, email="none@example.com", name="No Charge",
                                amount_total=2500, payment_intent="pi_PlaceholderNone",
                                metadata={"course_id": "course_art"}, created=T0)
        now = payment_intent("pi_PlaceholderNone", customer=CUS, amount=2500, latest_charge=None, status=status,
                             api_version=V2024)
        now["amount_received"] = 0
        return event("checkout.session.completed", told, created=T0), now
    told = invoice("in_PlaceholderNone", customer=CUS, subscription=None, amount_paid=2500, created=T0)
    now = invoice("in_PlaceholderNone", customer=CUS, subscription=None, amount_paid=0, created=T0, status=status)
    now["amount_due"] = 2500
    return event("invoice.paid", told, created=T0), now


@pytest.mark.parametrize("kind, status, ours", [
    ("payment_intent", "canceled", "failed"),
    ("payment_intent", "requires_payment_method", "pending"),
    ("invoice", "void", "failed"),
    ("invoice", "open", "pending"),
])
def test_a_placeholder_stripe_has_no_charge_for_is_compared_with_its_intent_or_invoice(
        services, stripe_api, send, reconcile, profile, kind, status, ours):
    told, now = _never_charged(kind, status)
    stripe_api.put(customer(CUS, email="none@example.com", name="No Charge"), now)
    send(event("customer.created", customer(CUS, email="none@example.com", name="No Charge"), created=T0), told)
    access = profile(CUS)["enrollments"]

    dry = reconcile(dry_run=True)

    assert _drift(dry) == [{"object": now["id"], "field": "status", "local": "succeeded", "stripe": ours}]
    assert dry["checked"] == 2  # the customer and the placeholder's object

    fixed = reconcile()

    assert fixed["drift"][0]["fixed"] is True
    with services.pool.connection() as conn:  # the run's drift rows (the scheduled runs' log) name the kind
        assert conn.execute("SELECT kind, object, fixed FROM reconciliation_drift WHERE run_id = %s",
                            (fixed["id"],)).fetchall() == [("payment", now["id"], True)]
    [payment] = profile(CUS)["payments"]
    assert (payment["stripe_charge_id"], payment["status"], payment["amount"]) == (None, ours, 2500)
    assert profile(CUS)["enrollments"] == access  # a payment that did not go through revokes nothing (rule 3)
    assert [a["kind"] for a in profile(CUS)["activity"] if a["origin"] == "reconciliation"] == ["payment.updated"]
    assert reconcile()["drift"] == []


def test_a_placeholder_whose_intent_names_a_charge_not_listed_is_linked_to_it(services, stripe_api, send):
    """Through drift.py's interface, as the run's placeholder phase calls it: with no listed charge
    matching it, the placeholder's intent is read, names its charge, and the fix links them."""
    stripe_api.reset(V2024, now=T0 + DAY)
    cus = stripe_api.create_customer(None, "Late Link", "late@example.com", cus_id="cus_PlaceholderLate")
    paid = stripe_api.buy_course(None, cus["id"], 4900, "course_python")
    send(*_only(stripe_api.take_events(), "customer.created", "checkout.session.completed"))
    pi = paid["payment_intent"]
    obj = drift.read_object(services, "", "payment", pi)
    with services.pool.connection() as conn:
        found = drift.differences("payment", obj, drift.local_rows(conn, "payment", "", [obj]).get(pi))

    assert found == [{"object": pi, "field": "stripe_charge_id", "local": None, "stripe": paid["id"], "fixed": False}]
    drift.fix_object(services, FixObject("", "payment", obj))
    with services.pool.connection() as conn:
        assert drift.differences("payment", obj, drift.local_rows(conn, "payment", "", [obj]).get(pi)) == []
    assert _payments(services, None) == [(paid["id"], paid["payment_intent"], None, None, "course_python",
                                          "succeeded", 0)]
