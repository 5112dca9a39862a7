"""The activity log: one entry per change to a customer's records, saying what, where from and why."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.sql import load

Q = load("customers")


@dataclass(frozen=True)
class Entry:
    customer_id: str | None
    account: str
    kind: str
    message: str
    origin: str  # stripe | teachery | reconciliation
    at: datetime | None = None
    stripe_event_id: str | None = None
    record_type: str | None = None
    record_id: str | None = None
    actor: str | None = None  # the admin token's name, for what an admin action did


def write(conn, entries: list[Entry]) -> None:
    """Insert entries in one round trip."""
    if not entries:
        return
    with conn.cursor() as cur:
        cur.executemany(Q.write_activity, [e.__dict__ for e in entries])
