"""Ordering snapshots of one Stripe object."""
from domain.versions import FETCHED, REFUND_RANK, SUBSCRIPTION_RANK, Order, compare


def test_later_second_wins():
    assert compare((101, 0), (100, 3)) is Order.NEWER
    assert compare((100, 3), (101, 0)) is Order.OLDER


def test_same_second_rank_breaks_the_tie():
    assert compare((100, REFUND_RANK["failed"]), (100, REFUND_RANK["succeeded"])) is Order.NEWER
    assert compare((100, SUBSCRIPTION_RANK["active"]), (100, SUBSCRIPTION_RANK["canceled"])) is Order.OLDER
    assert compare((100, 1), (100, 1)) is Order.SAME_TIME


def test_fetched_state_beats_events_of_its_second():
    assert compare((100, REFUND_RANK["canceled"]), (100, FETCHED)) is Order.OLDER


def test_nothing_stored_means_newer():
    assert compare((0, 0), None) is Order.NEWER
