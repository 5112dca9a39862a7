"""Subscriptions, end to end: docs/rules.md, rules 2 (cancel), 4 (pause), 8 (order, copies) and 11.

Subscriptions built by tests/stripe_events.py from supabase subscription_created.json (basil: period on
the items, as openapi fixtures3.json HEAD), plus the real supabase, zulip and dj-stripe subscription events.
"""
from __future__ import annotations

import pytest

from tests.stripe_events import BASIL, DAY, OLD, T0, charge, customer, event, invoice, iso, subscription
from tests.support import load_fixture

CUS = "cus_SubscriberOne1"
COURSE = "course_monthly_club"
SUB = "sub_SubscriptionOne1"
PERIOD_END = T0 + 30 * DAY
SUPABASE = "events/supabase_stripe-sync-engine__packages__fastify-app__src__test__stripe__{}.json"


def _sub(version=OLD, **changes):
    fields = dict(customer=CUS, created=T0, metadata={"course_id": COURSE}, current_period_start=T0,
                  current_period_end=PERIOD_END, api_version=version)
    fields.update(changes)
    return subscription(SUB, **fields)


@pytest.fixture
def subscribed(send, stripe_api):
    """A paid subscription to COURSE (created, first invoice paid, its charge), all applied."""
    stripe_api.put(customer(CUS, email="club@example.com", name="Club Member"), _sub())
    ch = charge("ch_SubscriptionOne1", customer=CUS, amount=4900, created=T0, invoice="in_SubscriptionOne1")
    inv = invoice("in_SubscriptionOne1", customer=CUS, subscription=SUB, amount_paid=4900, charge=ch["id"],
                  created=T0, subscription_metadata={"course_id": COURSE})
    send(event("customer.subscription.created", _sub(), created=T0), event("invoice.paid", inv, created=T0),
         event("charge.succeeded", ch, created=T0))


def _only_sub(profile, cus=CUS):
    subs = profile(cus)["subscriptions"]
    assert len(subs) == 1, subs
    return subs[0]


def _untouched(profile, before):
    """Rules 2 and 4: access and payments are never touched by cancels and pauses."""
    now = profile(CUS)
    assert now["enrollments"] == before["enrollments"]
    assert now["payments"] == before["payments"]
    assert [(e["course_id"], e["access"]) for e in now["enrollments"]] == [(COURSE, "active")]


@pytest.mark.parametrize("version", [OLD, "2024-06-20", BASIL])
def test_subscription_created_is_recorded(send, again, profile, stripe_api, version):
    stripe_api.put(customer(CUS, email="club@example.com", name="Club Member"), _sub(version))
    created = event("customer.subscription.created", _sub(version), created=T0, api_version=version)

    send(created)
    before = profile(CUS)
    again(created)

    assert profile(CUS) == before
    assert _only_sub(profile) == {
        "stripe_subscription_id": SUB, "course_id": COURSE, "status": "active", "pause_collection": None,
        "cancel_at_period_end": False, "cancel_at": None, "canceled_at": None, "ended_at": None,
        "current_period_end": iso(PERIOD_END),
    }
    assert any(a["stripe_event_id"] == created["id"] and a["origin"] == "stripe" for a in before["activity"])


def test_cancel_at_period_end_is_recorded_and_touches_nothing_else(send, again, profile, subscribed):
    before = profile(CUS)
    updated = event("customer.subscription.updated",
                    _sub(cancel_at_period_end=True, cancel_at=PERIOD_END, canceled_at=T0 + 5 * DAY),
                    created=T0 + 5 * DAY, previous_attributes={"cancel_at_period_end": False, "cancel_at": None,
                                                                "canceled_at": None})

    send(updated)
    after = profile(CUS)
    again(updated)

    assert profile(CUS) == after
    sub = _only_sub(profile)
    assert (sub["status"], sub["cancel_at_period_end"], sub["cancel_at"], sub["canceled_at"], sub["ended_at"]) == \
        ("active", True, iso(PERIOD_END), iso(T0 + 5 * DAY), None)
    _untouched(profile, before)
    assert any(a["stripe_event_id"] == updated["id"] for a in after["activity"])


def test_older_created_after_cancel_at_period_end_does_not_regress(send, profile, stripe_api):
    stripe_api.put(customer(CUS, email="club@example.com", name="Club Member"))

    send(event("customer.subscription.updated", _sub(cancel_at_period_end=True, cancel_at=PERIOD_END,
                                                     canceled_at=T0 + DAY), created=T0 + DAY))
    send(event("customer.subscription.created", _sub(), created=T0))

    sub = _only_sub(profile)
    assert (sub["cancel_at_period_end"], sub["cancel_at"], sub["status"]) == (True, iso(PERIOD_END), "active")


@pytest.mark.parametrize("version", [OLD, BASIL])
def test_deleted_cancels_now_and_touches_nothing_else(send, again, profile, subscribed, version):
    before = profile(CUS)
    ended = T0 + 10 * DAY
    deleted = event("customer.subscription.deleted", _sub(version, status="canceled", canceled_at=ended,
                                                          ended_at=ended), created=ended, api_version=version)

    send(deleted)
    after = profile(CUS)
    again(deleted)
    # an older update arriving late changes nothing back
    send(event("customer.subscription.updated", _sub(version, cancel_at_period_end=True, cancel_at=PERIOD_END,
                                                     canceled_at=T0 + 5 * DAY), created=T0 + 5 * DAY,
               api_version=version))

    assert profile(CUS)["subscriptions"] == after["subscriptions"]
    sub = _only_sub(profile)
    assert (sub["status"], sub["canceled_at"], sub["ended_at"]) == ("canceled", iso(ended), iso(ended))
    _untouched(profile, before)


@pytest.mark.parametrize("order", ["updated-first", "deleted-first"])
def test_update_and_delete_in_the_same_second_end_canceled(send, profile, subscribed, order):
    """At period end Stripe sends the last customer.subscription.updated and .deleted in one second."""
    second = PERIOD_END
    updated = event("customer.subscription.updated", _sub(cancel_at_period_end=True, cancel_at=PERIOD_END,
                                                          canceled_at=T0 + DAY), created=second)
    deleted = event("customer.subscription.deleted", _sub(status="canceled", cancel_at_period_end=True,
                                                          cancel_at=PERIOD_END, canceled_at=T0 + DAY,
                                                          ended_at=second), created=second)
    batch = [updated, deleted] if order == "updated-first" else [deleted, updated]

    send(*batch)

    sub = _only_sub(profile)
    assert (sub["status"], sub["ended_at"], sub["cancel_at_period_end"]) == ("canceled", iso(second), True)


def test_pause_collection_set_and_cleared_keeps_access(send, again, profile, subscribed):
    before = profile(CUS)
    resumes = T0 + 40 * DAY
    paused = event("customer.subscription.updated",
                   _sub(pause_collection={"behavior": "void", "resumes_at": resumes}), created=T0 + 3 * DAY,
                   previous_attributes={"pause_collection": None})

    send(paused)
    again(paused)

    sub = _only_sub(profile)
    assert sub["pause_collection"] == {"behavior": "void", "resumes_at": iso(resumes)}
    assert sub["status"] == "active"
    _untouched(profile, before)

    cleared = event("customer.subscription.updated", _sub(), created=T0 + 6 * DAY,
                    previous_attributes={"pause_collection": {"behavior": "void", "resumes_at": resumes}})
    send(cleared)
    send(event("customer.subscription.updated",  # the older paused snapshot again, under another event id
               _sub(pause_collection={"behavior": "void", "resumes_at": resumes}), created=T0 + 3 * DAY))

    sub = _only_sub(profile)
    assert sub["pause_collection"] is None
    _untouched(profile, before)


def test_pause_collection_without_resume_date(send, profile, subscribed):
    # the openapi fixtures3.json HEAD subscription: {"behavior": "mark_uncollectible", "resumes_at": null}
    send(event("customer.subscription.updated",
               _sub(pause_collection={"behavior": "mark_uncollectible", "resumes_at": None}), created=T0 + DAY))

    assert _only_sub(profile)["pause_collection"] == {"behavior": "mark_uncollectible", "resumes_at": None}


def test_paused_and_resumed_events(send, again, profile, subscribed):
    before = profile(CUS)
    paused = event("customer.subscription.paused", _sub(status="paused"), created=T0 + 2 * DAY)
    resumed = event("customer.subscription.resumed", _sub(status="active"), created=T0 + 4 * DAY)

    send(paused)
    again(paused)
    assert _only_sub(profile)["status"] == "paused"
    _untouched(profile, before)

    send(resumed)
    again(resumed)
    send(event("customer.subscription.paused", _sub(status="paused"), created=T0 + 2 * DAY))  # stale copy

    assert _only_sub(profile)["status"] == "active"
    _untouched(profile, before)


def test_resumed_before_paused_ends_active(send, profile, subscribed):
    send(event("customer.subscription.resumed", _sub(status="active"), created=T0 + 4 * DAY))
    send(event("customer.subscription.paused", _sub(status="paused"), created=T0 + 2 * DAY))

    assert _only_sub(profile)["status"] == "active"


def test_basil_period_end_comes_from_the_items(send, profile, stripe_api):
    stripe_api.put(customer(CUS, email="club@example.com", name="Club Member"))
    renewed = _sub(BASIL, current_period_start=PERIOD_END, current_period_end=PERIOD_END + 30 * DAY)
    assert "current_period_end" not in renewed

    send(event("customer.subscription.created", _sub(BASIL), created=T0, api_version=BASIL),
         event("customer.subscription.updated", renewed, created=PERIOD_END, api_version=BASIL))

    assert _only_sub(profile)["current_period_end"] == iso(PERIOD_END + 30 * DAY)


def test_subscription_of_an_unknown_customer_fetches_it(send, profile, stripe_api):
    stripe_api.put(customer(CUS, email="fetched@example.com", name="Fetched Member"))

    send(event("customer.subscription.created", _sub(), created=T0))

    assert stripe_api.calls_to(f"/v1/customers/{CUS}")
    found = profile(CUS)
    assert (found["email"], found["name"]) == ("fetched@example.com", "Fetched Member")
    assert _only_sub(profile)["stripe_subscription_id"] == SUB


def test_real_supabase_created_and_deleted_in_reverse(send, profile, stripe_api):
    # supabase subscription_created.json (created 1623148918) and subscription_deleted.json (1623149102)
    created = load_fixture(SUPABASE.format("subscription_created"))
    deleted = load_fixture(SUPABASE.format("subscription_deleted"))
    cus = created["data"]["object"]["customer"]
    stripe_api.put(customer(cus, email="billz@supabase.io", name="Copple"), deleted["data"]["object"])

    send(deleted)
    send(created)

    subs = profile(cus)["subscriptions"]
    assert [(s["stripe_subscription_id"], s["status"], s["canceled_at"], s["ended_at"]) for s in subs] == \
        [("sub_JdIzvfy6o5GZRd", "canceled", iso(1623149102), iso(1623149102))]
    assert subs[0]["course_id"] is None  # its metadata names no course_id


def test_real_zulip_update_to_trialing(send, profile, stripe_api):
    # zulip customer_subscription_updated.json: active → trialing (api 2018-11-08)
    updated = load_fixture("events/zulip_zulip__zerver__webhooks__stripe__fixtures__customer_subscription_updated.json")
    obj = updated["data"]["object"]
    stripe_api.put(customer(obj["customer"], email="zulip@example.com", name="Zulip Org"), obj)

    send(updated)

    sub = _only_sub(profile, obj["customer"])
    assert (sub["stripe_subscription_id"], sub["status"], sub["current_period_end"]) == \
        (obj["id"], "trialing", iso(obj["current_period_end"]))


def test_dj_stripe_deleted_event_that_still_says_active(send, profile, stripe_api):
    """dj-stripe FAKE_EVENT_CUSTOMER_SUBSCRIPTION_DELETED.json is a copy of the created event (same second,
    status still "active"). Stripe sends customer.subscription.deleted only for an ended subscription, and
    Stripe's API says canceled: we expect canceled."""
    created = load_fixture("events/dj-stripe_dj-stripe__tests____init__.py__FAKE_EVENT_CUSTOMER_SUBSCRIPTION_CREATED.json")
    deleted = load_fixture("events/dj-stripe_dj-stripe__tests____init__.py__FAKE_EVENT_CUSTOMER_SUBSCRIPTION_DELETED.json")
    obj = deleted["data"]["object"]
    # dj-stripe FAKE_SUBSCRIPTION_CANCELED.json: the same subscription, canceled, as the API returns it
    canceled = load_fixture("objects/dj-stripe_dj-stripe__tests____init__.py__FAKE_SUBSCRIPTION_CANCELED.json")
    stripe_api.put(customer(obj["customer"], email="dj@example.com", name="Dj Stripe"), dict(canceled, id=obj["id"]))

    send(created, deleted)

    assert _only_sub(profile, obj["customer"])["status"] == "canceled"
