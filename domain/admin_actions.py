"""The admin actions log: one row per admin request that changes something, keyed by its idempotency key."""
from __future__ import annotations

from dataclasses import dataclass

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

@dataclass
class AdminAction:
    id: str
    kind: str
    target: str
    account: str
    params: dict
    idempotency_key: str
    outcome: str  # started | succeeded | rejected | unavailable | failed
    error: str | None
    status_code: int | None
    response: dict | None
    actor: str | None  # the name of the admin token that asked (NULL before migration 0005)


_COLS = "id, kind, target, account, params, idempotency_key, outcome, error, status_code, response, actor"


def start(conn, *, kind: str, target: str, account: str, params: dict, idempotency_key: str,
          actor: str) -> AdminAction | None:
    """Record a new action as started; None when its idempotency key is already taken."""
    cur = conn.cursor(row_factory=class_row(AdminAction))
    return cur.execute(
        "INSERT INTO admin_actions (kind, target, account, params, idempotency_key, actor)"
        " VALUES (%(kind)s, %(target)s, %(account)s, %(params)s, %(key)s, %(actor)s)"
        f" ON CONFLICT (idempotency_key) DO NOTHING RETURNING {_COLS}",
        {"kind": kind, "target": target, "account": account, "params": Jsonb(params), "key": idempotency_key,
         "actor": actor},
    ).fetchone()


def lock_by_key(conn, idempotency_key: str) -> AdminAction | None:
    cur = conn.cursor(row_factory=class_row(AdminAction))
    return cur.execute(f"SELECT {_COLS} FROM admin_actions WHERE idempotency_key = %(key)s FOR UPDATE",
                       {"key": idempotency_key}).fetchone()


def restart(conn, action_id: str) -> None:
    """Try an action again whose Stripe call could not be made."""
    conn.execute("UPDATE admin_actions SET outcome = 'started', error = NULL, status_code = NULL,"
                 " response = NULL, finished_at = NULL WHERE id = %(id)s", {"id": action_id})


def finish(conn, action_id: str, outcome: str, *, status_code: int, response: dict | None = None,
           error: str | None = None) -> None:
    conn.execute(
        "UPDATE admin_actions SET outcome = %(outcome)s, status_code = %(status)s, response = %(response)s,"
        " error = %(error)s, finished_at = now() WHERE id = %(id)s",
        {"id": action_id, "outcome": outcome, "status": status_code,
         "response": Jsonb(response) if response is not None else None, "error": error},
    )
