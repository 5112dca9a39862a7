"""Subscriptions, keyed by (account, Stripe subscription id)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg.types.json import Jsonb

from domain.sql import fetch_all, fetch_one, load
from domain.versions import Versioned

Q = load("subscriptions")


@dataclass
class Subscription(Versioned):
    id: int
    account: str
    stripe_subscription_id: str
    stripe_customer_id: str | None
    customer_id: str | None
    course_id: str | None
    status: str
    pause_collection: dict | None
    cancel_at_period_end: bool
    cancel_at: datetime | None
    canceled_at: datetime | None
    ended_at: datetime | None
    current_period_end: datetime | None
    stripe_created: int
    stripe_rank: int


STATE_FIELDS = ("status", "pause_collection", "cancel_at_period_end", "cancel_at", "canceled_at", "ended_at",
                "current_period_end")


def lock(conn, account: str, subscription_id: str) -> Subscription | None:
    return fetch_one(conn, Subscription, Q.lock, {"a": account, "s": subscription_id})


def _state_params(state: dict, version: tuple[int, int]) -> dict:
    return {**state, "pause_collection": Jsonb(state["pause_collection"]) if state["pause_collection"] else None,
            "v_created": version[0], "v_rank": version[1]}


def insert(conn, account: str, state: dict, version: tuple[int, int]) -> Subscription | None:
    """A new subscription; None when another transaction created it first."""
    return fetch_one(conn, Subscription, Q.insert, {**_state_params(state, version), "a": account})


def update_state(conn, row_id: int, state: dict, version: tuple[int, int]) -> None:
    conn.execute(Q.update_state, {**_state_params(state, version), "rid": row_id})


def fill(conn, row_id: int, *, customer_id: str | None, course_id: str | None) -> None:
    conn.execute(Q.fill, {"rid": row_id, "c": customer_id, "k": course_id})


def link_course(conn, account: str, subscription_ids: list[str], course_id: str) -> None:
    conn.execute(Q.link_course, {"a": account, "ids": subscription_ids, "k": course_id})


def find(conn, subscription_id: str) -> list[Subscription]:
    """The subscriptions of a Stripe id in every account (ids are unique in Stripe: one at most)."""
    return fetch_all(conn, Subscription, Q.find, {"s": subscription_id})
