"""The handlers' pure decisions, without a database or a server: how a subscription's state is read
and described, which refund statuses count, whose event it is, and how snapshots of one object order."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.versions import CHARGE_RANK, CUSTOMER_RANK, FETCHED, REFUND_RANK, SUBSCRIPTION_RANK, Order, compare
from workers import stripe_objects as so
from workers.context import origin_of
from workers.event_table import EVENT_HANDLERS
from workers.handlers.refunds import refund_status
from workers.handlers.subscriptions import describe_change, state_of

T = 1_767_225_600  # 2026-01-01T00:00:00Z
AT = datetime(2026, 1, 1, tzinfo=UTC)


def _sub(**fields) -> dict:
    return {"id": "sub_1", "object": "subscription", "status": "active", "pause_collection": None,
            "cancel_at_period_end": False, "cancel_at": None, "canceled_at": None, "ended_at": None,
            "current_period_end": T + 30 * 86_400, **fields}


# --- subscriptions ------------------------------------------------------------------------------

def test_state_of_reads_every_field_the_profile_shows():
    state = state_of(_sub(pause_collection={"behavior": "void", "resumes_at": T}, cancel_at_period_end=True,
                          cancel_at=T, canceled_at=T - 60))
    assert state == {"status": "active", "pause_collection": {"behavior": "void", "resumes_at": "2026-01-01T00:00:00Z"},
                     "cancel_at_period_end": True, "cancel_at": AT,
                     "canceled_at": datetime(2025, 12, 31, 23, 59, tzinfo=UTC), "ended_at": None,
                     "current_period_end": datetime(2026, 1, 31, tzinfo=UTC)}


def test_state_of_basil_reads_the_period_from_the_items_and_tolerates_odd_values():
    sub = _sub(status=None, cancel_at_period_end="yes")
    del sub["current_period_end"]
    sub["items"] = {"object": "list", "data": [{"current_period_end": T}, {"current_period_end": T + 60}]}
    state = state_of(sub)
    assert state["status"] == "active" and state["cancel_at_period_end"] is False
    assert state["current_period_end"] == datetime(2026, 1, 1, 0, 1, tzinfo=UTC)


def test_describe_change_names_each_kind_of_change():
    before = state_of(_sub())
    assert describe_change("sub_1", before, before) == []
    assert describe_change("sub_1", before, state_of(_sub(status="canceled"))) == [
        ("Subscription sub_1: active → canceled", "subscription.canceled")]
    assert describe_change("sub_1", before, state_of(_sub(status="past_due"))) == [
        ("Subscription sub_1: active → past_due", "subscription.status")]
    paused = state_of(_sub(pause_collection={"behavior": "keep_as_draft", "resumes_at": T}))
    assert describe_change("sub_1", before, paused) == [
        ("Subscription sub_1: collection paused (keep_as_draft, resumes 2026-01-01T00:00:00Z)", "subscription.paused")]
    assert describe_change("sub_1", paused, before) == [("Subscription sub_1: collection resumed",
                                                         "subscription.resumed")]
    scheduled = state_of(_sub(cancel_at_period_end=True))
    assert describe_change("sub_1", before, scheduled) == [
        ("Subscription sub_1: set to cancel at 2026-01-31T00:00:00Z (period end)", "subscription.cancel_scheduled")]
    assert describe_change("sub_1", scheduled, before) == [
        ("Subscription sub_1: scheduled cancellation removed", "subscription.cancel_unscheduled")]
    renewed = state_of(_sub(current_period_end=T + 60 * 86_400))
    assert describe_change("sub_1", before, renewed) == [
        ("Subscription sub_1: current_period_end updated", "subscription.updated")]


def test_a_subscription_course_is_on_the_subscription_or_its_items():
    assert so.subscription_course({"metadata": {"course_id": "c1"}}) == "c1"
    on_price = {"metadata": {}, "items": {"data": [{"metadata": {}, "price": {"metadata": {"course_id": "c2"}}}]}}
    assert so.subscription_course(on_price) == "c2"
    on_plan = {"items": {"data": [{"plan": {"metadata": {"course_id": 7}}}]}}
    assert so.subscription_course(on_plan) == "7"
    assert so.subscription_course({"items": {"data": [{"price": {"metadata": {}}}]}}) is None


# --- refunds and payments -----------------------------------------------------------------------

@pytest.mark.parametrize("status", ["pending", "requires_action", "succeeded", "failed", "canceled"])
def test_refund_status_keeps_stripes_statuses(status):
    assert refund_status({"status": status}) == status


def test_refund_status_of_an_old_refund_without_one_is_succeeded():
    assert refund_status({}) == "succeeded" and refund_status({"status": "weird"}) == "succeeded"


def test_lists_and_integers_are_read_defensively():
    assert so.listed({"object": "list", "data": [{"id": "a"}, "junk", None]}) == [{"id": "a"}]
    assert so.listed([{"id": "b"}]) == [{"id": "b"}] and so.listed(None) == [] and so.listed({"data": "x"}) == []
    assert so.integer(5) == 5 and so.integer(True) == 0 and so.integer("5") == 0 and so.integer(None, 7) == 7


def test_invoice_payment_attempts_name_charges_and_intents_whatever_their_status():
    items = [{"status": "open", "payment": {"type": "payment_intent", "payment_intent": "pi_1"}},
             {"status": "paid", "payment": {"type": "charge", "charge": {"id": "ch_2", "object": "charge"}}},
             {"status": "paid", "payment": None}]
    assert so.invoice_payment_attempts(items) == [(None, "pi_1"), ("ch_2", None)]


# --- whose event, which handler, which snapshot -------------------------------------------------

def test_origin_is_teachery_only_for_our_own_idempotency_keys():
    assert origin_of({"request": {"idempotency_key": "teachery-abc"}}) == "teachery"
    assert origin_of({"request": {"idempotency_key": "dashboard-abc"}}) == "stripe"
    assert origin_of({"request": None}) == "stripe" and origin_of({}) == "stripe"


def test_the_event_table_maps_every_purchase_type_of_the_rules():
    purchases = ("checkout.session.completed", "invoice.paid", "invoice.payment_succeeded",
                 "payment_intent.succeeded", "charge.succeeded")
    assert all(callable(EVENT_HANDLERS[t]) for t in purchases)
    assert "charge.dispute.created" not in EVENT_HANDLERS  # recorded as ignored


def test_ranks_only_move_forward_within_a_second():
    assert REFUND_RANK["pending"] < REFUND_RANK["succeeded"] < REFUND_RANK["failed"] == REFUND_RANK["canceled"]
    assert SUBSCRIPTION_RANK["incomplete"] < SUBSCRIPTION_RANK["active"] < SUBSCRIPTION_RANK["canceled"]
    assert CHARGE_RANK["pending"] < CHARGE_RANK["succeeded"] == CHARGE_RANK["failed"]
    assert CUSTOMER_RANK["live"] < CUSTOMER_RANK["deleted"]
    assert max(*REFUND_RANK.values(), *SUBSCRIPTION_RANK.values(), *CHARGE_RANK.values(),
               *CUSTOMER_RANK.values()) < FETCHED


def test_a_deletion_in_the_same_second_beats_an_update_but_not_a_later_one():
    assert compare((T, CUSTOMER_RANK["deleted"]), (T, CUSTOMER_RANK["live"])) is Order.NEWER
    assert compare((T, CUSTOMER_RANK["live"]), (T, CUSTOMER_RANK["deleted"])) is Order.OLDER
    assert compare((T + 1, CUSTOMER_RANK["live"]), (T, CUSTOMER_RANK["deleted"])) is Order.NEWER
