"""Course links learned from one Stripe object and needed by another (see course_hints)."""
from __future__ import annotations

from domain.sql import fetch_value, load

Q = load("payments")


def remember(conn, account: str, object_ids: list[str], course_id: str) -> None:
    """Remember that these Stripe objects (cs_, pi_, in_, sub_, ch_) pay for this course."""
    ids = [i for i in object_ids if i]
    if not ids:
        return
    conn.execute(Q.remember_course, {"a": account, "ids": ids, "course": course_id})


def replace(conn, account: str, object_id: str, course_id: str) -> None:
    """This object now pays for another course (a subscription moved to another price)."""
    conn.execute(Q.replace_course, {"a": account, "id": object_id, "course": course_id})


def recall(conn, account: str, object_ids: list[str]) -> str | None:
    """The course remembered for the first of these objects that has one (most specific first: a charge, its
    invoice, then its subscription, which may have moved to another course since), else from a subscription
    row we hold."""
    ids = [i for i in object_ids if i]
    if not ids:
        return None
    return fetch_value(conn, Q.recall_course, {"a": account, "ids": ids})
