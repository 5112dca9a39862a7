"""Enrollments: a customer's access to a course. Only purchases and admins change them."""
from __future__ import annotations

from datetime import datetime


def grant_for_purchase(conn, account: str, customer_id: str, course_id: str, at: datetime | None) -> bool:
    """Create the enrollment a purchase gives; True when new. An existing one (even revoked) is
    left as it is: a redelivered purchase must not undo an admin's revoke."""
    conn.execute(
        "INSERT INTO courses (account, course_id) VALUES (%(a)s, %(course)s) ON CONFLICT DO NOTHING",
        {"a": account, "course": course_id},
    )
    row = conn.execute(
        "INSERT INTO enrollments (customer_id, course_id, access, granted_at)"
        " VALUES (%(c)s, %(course)s, 'active', COALESCE(%(at)s, now()))"
        " ON CONFLICT (customer_id, course_id) DO NOTHING RETURNING id",
        {"c": customer_id, "course": course_id, "at": at},
    ).fetchone()
    return row is not None
