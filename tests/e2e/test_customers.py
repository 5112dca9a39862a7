"""Customers, end to end: customer.updated and customer.deleted (docs/rules.md, rules 5, 8 and 11).

Customers built by tests/stripe_events.py from supabase customer_updated.json; deletions shaped like
supabase customer_deleted.json ({"id", "object", "deleted": true}).
"""
from __future__ import annotations

from tests.stripe_events import DAY, T0, charge, customer, deleted_customer, event, refund, subscription
from tests.support import load_fixture

CUS = "cus_CustomerOne01"
COURSE = "course_customers"
SUPABASE = "events/supabase_stripe-sync-engine__packages__fastify-app__src__test__stripe__{}.json"


def _buy(send, stripe_api, cus=CUS, name="Grace Hopper", email="grace@example.com"):
    stripe_api.put(customer(cus, email=email, name=name))
    send(event("charge.succeeded", charge(f"ch_{cus[4:]}", customer=cus, amount=3000, created=T0,
                                          metadata={"course_id": COURSE}), created=T0))


def test_customer_updated_changes_name_and_email(send, again, profile, stripe_api):
    _buy(send, stripe_api)
    renamed = customer(CUS, email="grace.hopper@navy.example", name="Rear Admiral Hopper")
    stripe_api.put(renamed)
    updated = event("customer.updated", renamed, created=T0 + DAY,
                    previous_attributes={"email": "grace@example.com", "name": "Grace Hopper"})

    send(updated)
    before = profile(CUS)
    again(updated)

    assert profile(CUS) == before
    assert (before["name"], before["email"]) == ("Rear Admiral Hopper", "grace.hopper@navy.example")
    assert any(a["stripe_event_id"] == updated["id"] and a["origin"] == "stripe" for a in before["activity"])


def test_older_customer_updated_after_newer_does_not_regress(send, profile, stripe_api):
    _buy(send, stripe_api)
    newest = customer(CUS, email="new@example.com", name="Newest Name")
    stripe_api.put(newest)

    send(event("customer.updated", newest, created=T0 + 2 * DAY))
    send(event("customer.updated", customer(CUS, email="old@example.com", name="Older Name"), created=T0 + DAY))

    found = profile(CUS)
    assert (found["name"], found["email"]) == ("Newest Name", "new@example.com")


def test_customer_updated_in_the_same_second_as_the_purchase(send, profile, stripe_api):
    """A purchase that fetched the customer, and the customer's own update in one second, in either order."""
    renamed = customer(CUS, email="same@example.com", name="Same Second")
    stripe_api.put(renamed)

    send(event("customer.updated", renamed, created=T0),
         event("charge.succeeded", charge("ch_CustomerSame01", customer=CUS, amount=100, created=T0), created=T0))

    found = profile(CUS)
    assert (found["name"], found["email"]) == ("Same Second", "same@example.com")


def test_customer_deleted_keeps_the_customer_and_its_access(send, again, profile, stripe_api):
    _buy(send, stripe_api)
    send(event("customer.subscription.created", subscription("sub_CustomerOne01", customer=CUS, created=T0,
                                                             metadata={"course_id": COURSE}), created=T0))
    before = profile(CUS)
    stripe_api.put(deleted_customer(CUS))
    deleted = event("customer.deleted", deleted_customer(CUS), created=T0 + 3 * DAY)

    send(deleted)
    after = profile(CUS)
    again(deleted)

    assert profile(CUS) == after
    assert after["deleted_in_stripe"] is True
    assert (after["id"], after["name"], after["email"]) == (before["id"], "Grace Hopper", "grace@example.com")
    assert after["enrollments"] == before["enrollments"]
    assert [(e["course_id"], e["access"]) for e in after["enrollments"]] == [(COURSE, "active")]
    assert after["payments"] == before["payments"]
    assert any(a["stripe_event_id"] == deleted["id"] for a in after["activity"])


def test_customer_deleted_with_the_full_object(send, profile, stripe_api):
    """Stripe's own customer.deleted carries the whole last customer object."""
    _buy(send, stripe_api)
    last = customer(CUS, email="grace@example.com", name="Grace Hopper")

    send(event("customer.deleted", last, created=T0 + DAY))

    found = profile(CUS)
    assert (found["deleted_in_stripe"], found["name"], found["email"]) == (True, "Grace Hopper", "grace@example.com")


def test_older_events_after_the_deletion_do_not_undelete(send, profile, stripe_api):
    _buy(send, stripe_api)
    stripe_api.put(deleted_customer(CUS))

    send(event("customer.deleted", deleted_customer(CUS), created=T0 + 3 * DAY))
    send(event("customer.updated", customer(CUS, email="grace@example.com", name="Grace B. Hopper"),
               created=T0 + DAY),
         event("refund.created", refund("re_CustomerOne01", charge=f"ch_{CUS[4:]}", amount=500, created=T0 + 2 * DAY),
               created=T0 + 2 * DAY))

    found = profile(CUS)
    assert found["deleted_in_stripe"] is True
    # Delivered in order, the update (T0+1d) sets the name before the deletion (T0+3d) keeps it: rule 8 wants
    # the same record whatever the order, so the late update's name is the "last known name" of rule 5.
    assert found["name"] == "Grace B. Hopper"
    assert found["payments"][0]["amount_refunded"] == 500  # docs/rules.md, rule 1: the refund still counts
    assert [(e["course_id"], e["access"]) for e in found["enrollments"]] == [(COURSE, "active")]


def test_real_supabase_update_and_delete(send, profile, stripe_api):
    # supabase customer_updated.json and customer_deleted.json share an event id (hand-made upstream):
    # the deletion is a duplicate delivery, so we give it its own id, one second later.
    updated = load_fixture(SUPABASE.format("customer_updated"))
    deleted = load_fixture(SUPABASE.format("customer_deleted"))
    deleted["id"], deleted["created"] = "evt_1IlZRsJDPojXS6LNdeleted", updated["created"] + 1
    cus = updated["data"]["object"]["id"]
    stripe_api.put(updated["data"]["object"])
    send(event("charge.succeeded", charge("ch_SupabaseCustomer", customer=cus, amount=999, created=T0,
                                          metadata={"course_id": COURSE}), created=updated["created"] - 10))

    send(updated)
    send(deleted)

    found = profile(cus)
    assert (found["name"], found["email"], found["deleted_in_stripe"]) == ("Copple", "billz@supabase.io", True)
    assert [(e["course_id"], e["access"]) for e in found["enrollments"]] == [(COURSE, "active")]
