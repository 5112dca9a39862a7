"""The admin actions log: one row per admin request that changes something, keyed by its idempotency key."""
from __future__ import annotations

from dataclasses import dataclass

from psycopg.types.json import Jsonb

from domain.sql import fetch_one, load

Q = load("admin_actions")


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


def start(conn, *, kind: str, target: str, account: str, params: dict, idempotency_key: str,
          actor: str) -> AdminAction | None:
    """Record a new action as started; None when its idempotency key is already taken."""
    return fetch_one(conn, AdminAction, Q.start, {"kind": kind, "target": target, "account": account,
                                                  "params": Jsonb(params), "key": idempotency_key, "actor": actor})


def lock_by_key(conn, idempotency_key: str) -> AdminAction | None:
    return fetch_one(conn, AdminAction, Q.lock_by_key, {"key": idempotency_key})


def restart(conn, action_id: str) -> None:
    """Try an action again whose Stripe call could not be made."""
    conn.execute(Q.restart, {"id": action_id})


def finish(conn, action_id: str, outcome: str, *, status_code: int, response: dict | None = None,
           error: str | None = None) -> None:
    conn.execute(Q.finish, {"id": action_id, "outcome": outcome, "status": status_code,
                            "response": Jsonb(response) if response is not None else None, "error": error})
