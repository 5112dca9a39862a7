"""Course links learned from one Stripe object and needed by another (see course_hints)."""
from __future__ import annotations


def remember(conn, account: str, object_ids: list[str], course_id: str) -> None:
    """Remember that these Stripe objects (cs_, pi_, in_, sub_, ch_) pay for this course."""
    ids = [i for i in object_ids if i]
    if not ids:
        return
    conn.execute(
        "INSERT INTO course_hints (account, object_id, course_id)"
        " SELECT %(a)s, unnest(%(ids)s::text[]), %(course)s ON CONFLICT DO NOTHING",
        {"a": account, "ids": ids, "course": course_id},
    )


def recall(conn, account: str, object_ids: list[str]) -> str | None:
    """The course remembered for any of these objects, or from a subscription row we hold."""
    ids = [i for i in object_ids if i]
    if not ids:
        return None
    row = conn.execute(
        "SELECT course_id FROM course_hints WHERE account = %(a)s AND object_id = ANY(%(ids)s)"
        " UNION ALL SELECT course_id FROM subscriptions WHERE account = %(a)s"
        "   AND stripe_subscription_id = ANY(%(ids)s) AND course_id IS NOT NULL LIMIT 1",
        {"a": account, "ids": ids},
    ).fetchone()
    return row[0] if row else None
