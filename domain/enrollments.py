"""Enrollments: a customer's access to a course. Only purchases and admins change them."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import class_row


@dataclass
class Enrollment:
    customer_id: str
    course_id: str
    access: str  # active | revoked
    granted_at: datetime
    revoked_at: datetime | None


_COLS = "customer_id, course_id, access, granted_at, revoked_at"


def remember_course(conn, account: str, course_id: str) -> None:
    conn.execute(
        "INSERT INTO courses (account, course_id) VALUES (%(a)s, %(course)s) ON CONFLICT DO NOTHING",
        {"a": account, "course": course_id},
    )


def grant_for_purchase(conn, account: str, customer_id: str, course_id: str, at: datetime | None) -> bool:
    """Create the enrollment a purchase gives; True when new. An existing one (even revoked) is
    left as it is: a redelivered purchase must not undo an admin's revoke."""
    remember_course(conn, account, course_id)
    row = conn.execute(
        "INSERT INTO enrollments (customer_id, course_id, access, granted_at)"
        " VALUES (%(c)s, %(course)s, 'active', COALESCE(%(at)s, now()))"
        " ON CONFLICT (customer_id, course_id) DO NOTHING RETURNING id",
        {"c": customer_id, "course": course_id, "at": at},
    ).fetchone()
    return row is not None


def lock(conn, customer_id: str, course_id: str) -> Enrollment | None:
    cur = conn.cursor(row_factory=class_row(Enrollment))
    return cur.execute(
        f"SELECT {_COLS} FROM enrollments WHERE customer_id = %(c)s AND course_id = %(course)s FOR UPDATE",
        {"c": customer_id, "course": course_id},
    ).fetchone()


def revoke(conn, customer_id: str, course_id: str) -> tuple[Enrollment | None, bool]:
    """Turn access off; (the enrollment or None when there is none, whether it changed)."""
    cur = conn.cursor(row_factory=class_row(Enrollment))
    row = cur.execute(
        "UPDATE enrollments SET access = 'revoked', revoked_at = now()"
        f" WHERE customer_id = %(c)s AND course_id = %(course)s AND access = 'active' RETURNING {_COLS}",
        {"c": customer_id, "course": course_id},
    ).fetchone()
    return (row, True) if row else (lock(conn, customer_id, course_id), False)


def grant(conn, account: str, customer_id: str, course_id: str) -> tuple[Enrollment, bool]:
    """Turn access on, creating the enrollment when there is none; (the enrollment, whether it changed)."""
    remember_course(conn, account, course_id)
    cur = conn.cursor(row_factory=class_row(Enrollment))
    row = cur.execute(
        "INSERT INTO enrollments (customer_id, course_id, access) VALUES (%(c)s, %(course)s, 'active')"
        " ON CONFLICT (customer_id, course_id) DO UPDATE SET access = 'active', revoked_at = NULL"
        f" WHERE enrollments.access = 'revoked' RETURNING {_COLS}",
        {"c": customer_id, "course": course_id},
    ).fetchone()
    return (row, True) if row else (lock(conn, customer_id, course_id), False)


def active_courses(conn, customer_id: str) -> list[str]:
    rows = conn.execute("SELECT course_id FROM enrollments WHERE customer_id = %(c)s AND access = 'active'"
                        " ORDER BY granted_at, id", {"c": customer_id}).fetchall()
    return [r[0] for r in rows]
