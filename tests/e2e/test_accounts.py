"""Connected accounts, end to end: the event's top-level `account` partitions every record (docs/rules.md, rule 13).

Two accounts with the same customer email, and even the same cus_ id, never mix. Objects from
tests/stripe_events.py (supabase charge_succeeded.json, refund_created.json, customer_updated.json,
subscription_created.json); Connect events carry `account` at the top level.
"""
from __future__ import annotations

import pytest

from tests.stripe_events import DAY, T0, charge, customer, event, refund, subscription

ACCT_A = "acct_1SchoolAlphaAAAA"
ACCT_B = "acct_1SchoolBetaBBBBB"
CUS = "cus_SharedAcrossAccts"  # the same id in both accounts (ids are only unique per account)
EMAIL = "same.person@example.com"
CH = "ch_SharedAcrossAccts"


@pytest.fixture
def two_schools(send, stripe_api):
    """The same person buys in account A (course a) and in account B (course b), same cus_ and ch_ ids."""
    stripe_api.put(customer(CUS, email=EMAIL, name="Alpha Student"), account=ACCT_A)
    stripe_api.put(customer(CUS, email=EMAIL, name="Beta Student"), account=ACCT_B)
    send(event("charge.succeeded", charge(CH, customer=CUS, amount=1000, created=T0,
                                          metadata={"course_id": "course_a"}), created=T0, account=ACCT_A),
         event("charge.succeeded", charge(CH, customer=CUS, amount=2000, created=T0,
                                          metadata={"course_id": "course_b"}), created=T0, account=ACCT_B))


def test_unknown_customer_is_fetched_with_the_event_account(stripe_api, two_schools):
    calls = stripe_api.calls_to(f"/v1/customers/{CUS}")
    assert {c["account"] for c in calls} == {ACCT_A, ACCT_B}


def test_profiles_stay_separate(profile, two_schools):
    alpha, beta = profile(CUS, ACCT_A), profile(CUS, ACCT_B)

    assert alpha["id"] != beta["id"]
    assert (alpha["account"], alpha["name"], alpha["email"]) == (ACCT_A, "Alpha Student", EMAIL)
    assert (beta["account"], beta["name"], beta["email"]) == (ACCT_B, "Beta Student", EMAIL)
    assert [(p["stripe_charge_id"], p["amount"], p["course_id"]) for p in alpha["payments"]] == [(CH, 1000, "course_a")]
    assert [(p["stripe_charge_id"], p["amount"], p["course_id"]) for p in beta["payments"]] == [(CH, 2000, "course_b")]
    assert [e["course_id"] for e in alpha["enrollments"]] == ["course_a"]
    assert [e["course_id"] for e in beta["enrollments"]] == ["course_b"]
    assert profile(CUS) is None  # nothing in the platform's own account


def test_search_returns_both_with_their_account(admin, two_schools):
    status, body = admin("GET", f"/customers?q={EMAIL.upper()}")

    assert status == 200
    assert sorted((c["account"], c["stripe_customer_id"], c["name"], c["email"]) for c in body["customers"]) == [
        (ACCT_A, CUS, "Alpha Student", EMAIL), (ACCT_B, CUS, "Beta Student", EMAIL)]


def test_an_event_of_one_account_never_changes_the_other(send, profile, two_schools):
    alpha_before = profile(CUS, ACCT_A)
    re_b = refund("re_SharedAcrossAccts", charge=CH, amount=2000, created=T0 + DAY)

    send(event("customer.updated", customer(CUS, email="beta.only@example.com", name="Beta Renamed"),
               created=T0 + DAY, account=ACCT_B),
         event("refund.created", re_b, created=T0 + DAY, account=ACCT_B),
         event("charge.refunded", charge(CH, customer=CUS, amount=2000, created=T0, refunds=[re_b],
                                         metadata={"course_id": "course_b"}), created=T0 + DAY, account=ACCT_B),
         event("customer.subscription.created", subscription("sub_OnlyInBeta", customer=CUS, created=T0 + DAY,
                                                             metadata={"course_id": "course_b"}),
               created=T0 + DAY, account=ACCT_B))

    assert profile(CUS, ACCT_A) == alpha_before
    beta = profile(CUS, ACCT_B)
    assert (beta["name"], beta["email"]) == ("Beta Renamed", "beta.only@example.com")
    assert [(p["amount_refunded"], p["status"]) for p in beta["payments"]] == [(2000, "refunded")]
    assert [s["stripe_subscription_id"] for s in beta["subscriptions"]] == ["sub_OnlyInBeta"]


def test_deleting_in_one_account_leaves_the_other(send, profile, two_schools):
    send(event("customer.deleted", {"id": CUS, "object": "customer", "deleted": True}, created=T0 + DAY,
               account=ACCT_A))

    assert profile(CUS, ACCT_A)["deleted_in_stripe"] is True
    assert profile(CUS, ACCT_B)["deleted_in_stripe"] is False


def test_platform_and_connected_account_do_not_mix(send, profile, stripe_api):
    stripe_api.put(customer(CUS, email=EMAIL, name="Platform Student"))
    stripe_api.put(customer(CUS, email=EMAIL, name="Alpha Student"), account=ACCT_A)

    send(event("charge.succeeded", charge(CH, customer=CUS, amount=500, created=T0), created=T0),
         event("charge.succeeded", charge(CH, customer=CUS, amount=700, created=T0), created=T0, account=ACCT_A))

    platform = profile(CUS)
    assert (platform["account"], platform["name"], [p["amount"] for p in platform["payments"]]) == \
        (None, "Platform Student", [500])
    assert [p["amount"] for p in profile(CUS, ACCT_A)["payments"]] == [700]


def test_refund_for_an_unknown_charge_fetches_it_from_the_event_account(send, profile, stripe_api):
    re1 = refund("re_FetchInBeta", charge="ch_FetchInBeta", amount=300, created=T0 + DAY)
    stripe_api.put(customer("cus_FetchInBeta", email="fetch@example.com", name="Fetch Beta"),
                   charge("ch_FetchInBeta", customer="cus_FetchInBeta", amount=900, created=T0, refunds=[re1]),
                   re1, account=ACCT_B)

    send(event("refund.created", re1, created=T0 + DAY, account=ACCT_B))

    calls = stripe_api.calls_to("/v1/charges/ch_FetchInBeta")
    assert calls and {c["account"] for c in calls} == {ACCT_B}
    beta = profile("cus_FetchInBeta", ACCT_B)
    assert [(p["amount"], p["amount_refunded"]) for p in beta["payments"]] == [(900, 300)]
    assert profile("cus_FetchInBeta") is None and profile("cus_FetchInBeta", ACCT_A) is None
