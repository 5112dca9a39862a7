"""Ordering Stripe snapshots: which of two states of one object is the newer.

A snapshot's version is (created, rank): the `created` time of the event that carried it
(Stripe's own clock, whole seconds) and a rank of the object's state within that second,
because Stripe often sends several events for one object in the same second. The rank only
breaks ties; it encodes transitions that cannot go backwards (a refund that failed never
succeeds again; a canceled subscription stays canceled). A state read from the API ranks
above every event of the same second: it is at least as new as the event that caused the read.
"""
from __future__ import annotations

import enum

FETCHED = 9

SUBSCRIPTION_RANK = {"incomplete": 0, "trialing": 1, "active": 1, "past_due": 1, "unpaid": 1, "paused": 1,
                     "canceled": 3, "incomplete_expired": 3}
REFUND_RANK = {"pending": 0, "requires_action": 1, "succeeded": 2, "failed": 3, "canceled": 3}
CHARGE_RANK = {"pending": 0, "succeeded": 1, "failed": 1}
CUSTOMER_RANK = {"live": 1, "deleted": 3}


class Order(enum.Enum):
    NEWER = "newer"
    OLDER = "older"
    SAME_TIME = "same_time"


def compare(incoming: tuple[int, int], stored: tuple[int, int] | None) -> Order:
    """Where the incoming snapshot stands against the stored one."""
    if stored is None or incoming > stored:
        return Order.NEWER
    if incoming < stored:
        return Order.OLDER
    return Order.SAME_TIME


class Versioned:
    """A row that reflects a Stripe snapshot: its version is (stripe_created, stripe_rank)."""

    stripe_created: int
    stripe_rank: int

    @property
    def version(self) -> tuple[int, int]:
        return (self.stripe_created, self.stripe_rank)
