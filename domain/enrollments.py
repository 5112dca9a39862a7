"""Enrollments: a customer's access to a course. Only purchases and admins change them."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.sql import fetch_column, fetch_one, fetch_value, load

Q = load("customers")


@dataclass
class Enrollment:
    customer_id: str
    course_id: str
    access: str  # active | revoked
    granted_at: datetime
    revoked_at: datetime | None


def remember_course(conn, account: str, course_id: str) -> None:
    conn.execute(Q.remember_course, {"a": account, "course": course_id})


def grant_for_purchase(conn, account: str, customer_id: str, course_id: str, at: datetime | None) -> bool:
    """Create the enrollment a purchase gives; True when new. An existing one (even revoked) is
    left as it is: a redelivered purchase must not undo an admin's revoke."""
    remember_course(conn, account, course_id)
    return fetch_value(conn, Q.grant_for_purchase, {"c": customer_id, "course": course_id, "at": at}) is not None


def date_back_grant(conn, customer_id: str, course_id: str, at: datetime) -> None:
    """Date an active access back to an older purchase of it (a reconciliation importing purchases
    newest first)."""
    conn.execute(Q.date_back_grant, {"c": customer_id, "course": course_id, "at": at})


def lock(conn, customer_id: str, course_id: str) -> Enrollment | None:
    return fetch_one(conn, Enrollment, Q.lock_enrollment, {"c": customer_id, "course": course_id})


def revoke(conn, customer_id: str, course_id: str) -> tuple[Enrollment | None, bool]:
    """Turn access off; (the enrollment or None when there is none, whether it changed)."""
    row = fetch_one(conn, Enrollment, Q.revoke, {"c": customer_id, "course": course_id})
    return (row, True) if row else (lock(conn, customer_id, course_id), False)


def grant(conn, account: str, customer_id: str, course_id: str) -> tuple[Enrollment, bool]:
    """Turn access on, creating the enrollment when there is none; (the enrollment, whether it changed)."""
    remember_course(conn, account, course_id)
    row = fetch_one(conn, Enrollment, Q.grant, {"c": customer_id, "course": course_id})
    return (row, True) if row else (lock(conn, customer_id, course_id), False)


def active_courses(conn, customer_id: str) -> list[str]:
    return fetch_column(conn, Q.active_courses, {"c": customer_id})
