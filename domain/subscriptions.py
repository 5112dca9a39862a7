"""Subscriptions, keyed by (account, Stripe subscription id)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from domain.versions import Versioned


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

_COLS = ("id, account, stripe_subscription_id, stripe_customer_id, customer_id, course_id, status, pause_collection,"
         " cancel_at_period_end, cancel_at, canceled_at, ended_at, current_period_end, stripe_created, stripe_rank")


def lock(conn, account: str, subscription_id: str) -> Subscription | None:
    cur = conn.cursor(row_factory=class_row(Subscription))
    return cur.execute(
        f"SELECT {_COLS} FROM subscriptions WHERE account = %(a)s AND stripe_subscription_id = %(s)s FOR UPDATE",
        {"a": account, "s": subscription_id},
    ).fetchone()


def insert(conn, account: str, state: dict, version: tuple[int, int]) -> Subscription | None:
    cur = conn.cursor(row_factory=class_row(Subscription))
    params = {**state, "a": account, "pause_collection": Jsonb(state["pause_collection"]) if state["pause_collection"] else None,
              "v_created": version[0], "v_rank": version[1]}
    return cur.execute(
        "INSERT INTO subscriptions (account, stripe_subscription_id, stripe_customer_id, customer_id, course_id,"
        " status, pause_collection, cancel_at_period_end, cancel_at, canceled_at, ended_at, current_period_end,"
        " stripe_created, stripe_rank)"
        " VALUES (%(a)s, %(stripe_subscription_id)s, %(stripe_customer_id)s, %(customer_id)s, %(course_id)s,"
        " %(status)s, %(pause_collection)s, %(cancel_at_period_end)s, %(cancel_at)s, %(canceled_at)s, %(ended_at)s,"
        " %(current_period_end)s, %(v_created)s, %(v_rank)s)"
        f" ON CONFLICT DO NOTHING RETURNING {_COLS}",
        params,
    ).fetchone()


def update_state(conn, row_id: int, state: dict, version: tuple[int, int]) -> None:
    params = {**state, "rid": row_id,
              "pause_collection": Jsonb(state["pause_collection"]) if state["pause_collection"] else None,
              "v_created": version[0], "v_rank": version[1]}
    conn.execute(
        "UPDATE subscriptions SET status = %(status)s, pause_collection = %(pause_collection)s,"
        " cancel_at_period_end = %(cancel_at_period_end)s, cancel_at = %(cancel_at)s, canceled_at = %(canceled_at)s,"
        " ended_at = %(ended_at)s, current_period_end = %(current_period_end)s,"
        " customer_id = COALESCE(customer_id, %(customer_id)s), course_id = COALESCE(course_id, %(course_id)s),"
        " stripe_created = %(v_created)s, stripe_rank = %(v_rank)s, updated_at = now() WHERE id = %(rid)s",
        params,
    )


def fill(conn, row_id: int, *, customer_id: str | None, course_id: str | None) -> None:
    conn.execute(
        "UPDATE subscriptions SET customer_id = COALESCE(customer_id, %(c)s), course_id = COALESCE(course_id, %(k)s)"
        " WHERE id = %(rid)s",
        {"rid": row_id, "c": customer_id, "k": course_id},
    )


def link_course(conn, account: str, subscription_ids: list[str], course_id: str) -> None:
    conn.execute(
        "UPDATE subscriptions SET course_id = %(k)s WHERE account = %(a)s AND course_id IS NULL"
        " AND stripe_subscription_id = ANY(%(ids)s)",
        {"a": account, "ids": subscription_ids, "k": course_id},
    )


def find(conn, subscription_id: str) -> list[Subscription]:
    """The subscriptions of a Stripe id in every account (ids are unique in Stripe: one at most)."""
    cur = conn.cursor(row_factory=class_row(Subscription))
    return cur.execute(f"SELECT {_COLS} FROM subscriptions WHERE stripe_subscription_id = %(s)s ORDER BY account",
                       {"s": subscription_id}).fetchall()
