"""The outbox: emails we decided to send, left for Teachery's mailer to deliver (and mark sent_at)."""
from __future__ import annotations

from psycopg.types.json import Jsonb

from domain.sql import fetch_value, load

Q = load("customers")


def add(conn, *, kind: str, customer_id: str, to_address: str, subject: str, payload: dict,
        admin_action_id: str | None) -> int:
    """Queue one email; returns its outbox id."""
    return fetch_value(conn, Q.add_to_outbox, {"kind": kind, "c": customer_id, "action": admin_action_id,
                                               "to": to_address, "subject": subject, "payload": Jsonb(payload)})
