"""The objects an event names (a changed-since reconciliation re-reads them) and the report's drift cursor."""
import pytest

from webhooks.schemas import drift_cursor, drift_seq
from workers.changed_objects import named


def test_an_event_names_its_object_then_what_it_points_to():
    refunded = {"data": {"object": {"id": "ch_1", "object": "charge", "customer": "cus_1",
                                    "payment_intent": "pi_1", "invoice": "in_1"}}}
    assert named(refunded) == [("charge", "ch_1"), ("customer", "cus_1")]
    refund = {"data": {"object": {"id": "re_1", "object": "refund", "charge": "ch_1"}}}
    assert named(refund) == [("refund", "re_1"), ("charge", "ch_1")]
    invoice = {"data": {"object": {"id": "in_1", "object": "invoice", "customer": {"id": "cus_2"},
                                   "subscription": "sub_1", "charge": None}}}
    assert named(invoice) == [("customer", "cus_2"), ("subscription", "sub_1")]
    session = {"data": {"object": {"id": "cs_1", "object": "checkout.session", "customer": "cus_3",
                                   "subscription": "sub_9"}}}
    assert named(session) == [("customer", "cus_3"), ("subscription", "sub_9")]


@pytest.mark.parametrize("event", [{}, {"data": None}, {"data": {"object": "x"}},
                                   {"data": {"object": {"object": "customer"}}},
                                   {"data": {"object": {"object": "invoice", "customer": "acct_1"}}}])
def test_what_names_nothing_we_keep_is_empty(event):
    assert named(event) == []


def test_the_drift_cursor_round_trips_and_refuses_anything_else():
    assert drift_seq(drift_cursor(123456)) == 123456
    for bad in ("", "123", "ZHJpZnQ6", "ZHJpZnQ6LTE", "ZHJpZnQ6MXg", "!!!", "é"):
        with pytest.raises(ValueError):
            drift_seq(bad)
