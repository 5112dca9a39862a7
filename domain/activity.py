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


_COLUMNS = tuple(Entry.__dataclass_fields__)


def write(conn, entries: list[Entry]) -> None:
    """Insert entries in one statement."""
    if not entries:
        return
    conn.execute(Q.write_activity, {name: [getattr(e, name) for e in entries] for name in _COLUMNS})
