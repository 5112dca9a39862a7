"""The outbox: emails we decided to send, left for Teachery's mailer to deliver (and mark sent_at)."""
from __future__ import annotations

from psycopg.types.json import Jsonb


def add(conn, *, kind: str, customer_id: str, to_address: str, subject: str, payload: dict,
        admin_action_id: str | None) -> int:
    """Queue one email; returns its outbox id."""
    return conn.execute(
        "INSERT INTO outbox (kind, customer_id, admin_action_id, to_address, subject, payload)"
        " VALUES (%(kind)s, %(c)s, %(action)s, %(to)s, %(subject)s, %(payload)s) RETURNING id",
        {"kind": kind, "c": customer_id, "action": admin_action_id, "to": to_address, "subject": subject,
         "payload": Jsonb(payload)},
    ).fetchone()[0]
