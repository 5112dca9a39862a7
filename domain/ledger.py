"""The event ledger: every Stripe event we received, once per id, with its processing state."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from domain.accounts import to_key


class EventStatus(str, enum.Enum):
    RECEIVED = "received"
    PROCESSING = "processing"
    PROCESSED = "processed"
    IGNORED = "ignored"
    WAITING = "waiting"
    FAILED = "failed"


STATUSES = tuple(s.value for s in EventStatus)


@dataclass
class LedgerEvent:
    id: str
    account: str
    type: str
    api_version: str | None
    created: int
    status: str
    attempts: int
    last_error: str | None
    waiting_on: str | None
    received_at: datetime
    processed_at: datetime | None
    next_attempt_at: datetime | None = None
    payload: dict | None = None


RECORD_EVENT = """
WITH acct AS (
    INSERT INTO accounts (id) VALUES (%(account)s) ON CONFLICT DO NOTHING
)
INSERT INTO events (id, account, type, api_version, created, payload, source)
VALUES (%(id)s, %(account)s, %(type)s, %(api_version)s, %(created)s, %(payload)s::jsonb, %(source)s)
ON CONFLICT (id) DO NOTHING
RETURNING id
"""

_COLUMNS = ("id, account, type, api_version, created, status, attempts, last_error, waiting_on, received_at,"
            " processed_at, next_attempt_at")


def record_event(conn, event: dict, *, raw: bytes | str | None = None, source: str = "webhook") -> bool:
    """Store a raw event once per id; True when it was new.

    `raw` is the body as received: stored as it is (PostgreSQL parses it into jsonb), which also
    saves serialising the parsed event again. A body PostgreSQL cannot store (a \\u0000 escape)
    raises psycopg.DataError.
    """
    created = event.get("created")
    params = {
        "id": event["id"],
        "account": to_key(event.get("account")),
        "type": event["type"],
        "api_version": event.get("api_version") if isinstance(event.get("api_version"), str) else None,
        "created": created if isinstance(created, int) and not isinstance(created, bool) else 0,
        "payload": (raw.decode() if isinstance(raw, bytes) else raw) if raw is not None else Jsonb(event),
        "source": source,
    }
    return conn.execute(RECORD_EVENT, params).fetchone() is not None


def get_event(conn, event_id: str, *, with_payload: bool = False) -> LedgerEvent | None:
    cols = _COLUMNS + (", payload" if with_payload else "")
    cur = conn.cursor(row_factory=class_row(LedgerEvent))
    return cur.execute(f"SELECT {cols} FROM events WHERE id = %(id)s", {"id": event_id}).fetchone()


def list_events(conn, *, status: str | None = None, type_: str | None = None,
                since: datetime | None = None, limit: int = 100) -> list[LedgerEvent]:
    """The ledger, newest first."""
    cur = conn.cursor(row_factory=class_row(LedgerEvent))
    return cur.execute(
        f"SELECT {_COLUMNS} FROM events"
        " WHERE (%(status)s::text IS NULL OR status = %(status)s)"
        "   AND (%(type)s::text IS NULL OR type = %(type)s)"
        "   AND (%(since)s::timestamptz IS NULL OR received_at >= %(since)s)"
        " ORDER BY received_at DESC, id DESC LIMIT %(limit)s",
        {"status": status, "type": type_, "since": since, "limit": limit},
    ).fetchall()


def changes_of(conn, event_id: str) -> list[dict]:
    """The records an event changed, from the activity it wrote."""
    rows = conn.execute(
        "SELECT record_type, record_id, kind, message, customer_id FROM activity"
        " WHERE stripe_event_id = %(id)s ORDER BY id",
        {"id": event_id},
    ).fetchall()
    return [
        {"record_type": r[0], "record_id": r[1], "kind": r[2], "message": r[3], "customer_id": r[4]}
        for r in rows
    ]


CLAIM = f"SELECT {_COLUMNS}, payload FROM events WHERE id = %(id)s FOR UPDATE SKIP LOCKED"


def claim(conn, event_id: str) -> LedgerEvent | None:
    """Lock the event for this transaction; None when missing or another worker holds it."""
    cur = conn.cursor(row_factory=class_row(LedgerEvent))
    return cur.execute(CLAIM, {"id": event_id}).fetchone()


CLAIM_RECEIVED = (
    f"SELECT {_COLUMNS}, payload FROM events WHERE status = 'received' AND id <> %(exclude)s"
    " ORDER BY received_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED"
)


def claim_received(conn, *, exclude: str, limit: int) -> list[LedgerEvent]:
    """Lock up to `limit` more events that no worker has applied yet (skipping ones others hold)."""
    if limit <= 0:
        return []
    cur = conn.cursor(row_factory=class_row(LedgerEvent))
    return cur.execute(CLAIM_RECEIVED, {"exclude": exclude, "limit": limit}).fetchall()


def exists(conn, event_id: str) -> bool:
    return conn.execute("SELECT 1 FROM events WHERE id = %(id)s", {"id": event_id}).fetchone() is not None


def mark(conn, event_id: str, status: EventStatus, *, error: str | None = None,
         waiting_on: str | None = None, retry_in_seconds: int | None = None, count_attempt: bool = True) -> None:
    """Record the outcome of one attempt."""
    conn.execute(
        "UPDATE events SET status = %(status)s, last_error = %(error)s, waiting_on = %(waiting_on)s,"
        " attempts = attempts + %(inc)s,"
        " processed_at = CASE WHEN %(status)s IN ('processed', 'ignored') THEN now() ELSE processed_at END,"
        " next_attempt_at = CASE WHEN %(retry)s::int IS NULL THEN NULL"
        "                   ELSE now() + make_interval(secs => %(retry)s::int) END"
        " WHERE id = %(id)s",
        {"status": status.value, "error": error, "waiting_on": waiting_on, "id": event_id,
         "inc": 1 if count_attempt else 0, "retry": retry_in_seconds},
    )


def waiting_on(conn, account: str, object_ids: list[str]) -> list[str]:
    """Ids of events waiting for any of these Stripe objects."""
    if not object_ids:
        return []
    rows = conn.execute(
        "SELECT id FROM events WHERE account = %(account)s AND waiting_on = ANY(%(ids)s)"
        " AND status IN ('waiting', 'failed')",
        {"account": account, "ids": object_ids},
    ).fetchall()
    return [r[0] for r in rows]


def stranded(conn, *, older_than_seconds: int = 60, limit: int = 1000) -> list[tuple[str, str, int]]:
    """(id, status, attempts) of events that a job should take now and that no worker holds:
    received longer ago than `older_than_seconds` (stored while Redis was down, or their worker
    was killed), or waiting/failed with their retry time come. A worker applying an event holds
    its row lock, and a killed worker's lock goes with its connection: SKIP LOCKED tells them apart."""
    rows = conn.execute(
        "SELECT id, status, attempts FROM events WHERE"
        " (status = 'received' AND received_at < now() - make_interval(secs => %(age)s))"
        " OR (status IN ('waiting', 'failed') AND next_attempt_at <= now())"
        " ORDER BY received_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED",
        {"age": older_than_seconds, "limit": limit},
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def reset_for_replay(conn, event_ids: list[str]) -> list[str]:
    """Put events back to `received` for a replay; returns the ids that exist."""
    rows = conn.execute(
        "UPDATE events SET status = 'received', next_attempt_at = NULL WHERE id = ANY(%(ids)s) RETURNING id",
        {"ids": event_ids},
    ).fetchall()
    return [r[0] for r in rows]


def ids_matching(conn, *, status: str | None = None, since: datetime | None = None) -> list[str]:
    rows = conn.execute(
        "SELECT id FROM events WHERE (%(status)s::text IS NULL OR status = %(status)s)"
        " AND (%(since)s::timestamptz IS NULL OR received_at >= %(since)s) ORDER BY created, received_at",
        {"status": status, "since": since},
    ).fetchall()
    return [r[0] for r in rows]


def count_by_status(conn) -> dict[str, int]:
    """How many events the ledger holds in each status."""
    return dict(conn.execute("SELECT status, count(*) FROM events GROUP BY status").fetchall())


def oldest_unapplied_age(conn) -> float:
    """Seconds since the oldest event that is received or waiting arrived (0 when there is none)."""
    row = conn.execute(
        "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(received_at)), 0) FROM events"
        " WHERE status IN ('received', 'waiting')"
    ).fetchone()
    return float(row[0])
