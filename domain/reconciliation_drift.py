"""A reconciliation run's drift items (rows of reconciliation_drift, in `seq` order) and the objects it has
listed or read (reconciliation_seen): what lets a run stream page by page and be resumed."""
from __future__ import annotations

from psycopg.types.json import Jsonb

from domain.sql import fetch_all, fetch_column, fetch_value, load

Q = load("reconciliation_drift")


def record(conn, run_id: str, account: str | None, kind: str, items: list[dict]) -> int:
    """Store drift items ({object, field, local, stripe}) of one account (None: the platform) and kind;
    an item the run recorded already is kept as it was. Returns how many were new."""
    if not items:
        return 0
    rows = Jsonb([{k: item[k] for k in ("object", "field", "local", "stripe")} for item in items])
    return conn.execute(Q.record, {"run": run_id, "account": account, "kind": kind, "items": rows}).rowcount


def recorded(conn, run_id: str, account: str | None, ids: list[str]) -> list[dict]:
    """The items the run recorded for these objects ({object, field, fixed}), in the order found."""
    if not ids:
        return []
    return fetch_all(conn, dict, Q.recorded, {"run": run_id, "account": account, "ids": ids})


def mark_fixed(conn, run_id: str, account: str | None, ids: list[str], still: set[tuple[str, str]]) -> int:
    """Mark fixed the items of these objects except the (object, field) pairs that still differ; returns
    how many items were newly marked."""
    if not ids:
        return 0
    return len(fetch_column(conn, Q.mark_fixed, {"run": run_id, "account": account, "ids": ids,
                                                 "still": [f"{obj} {field}" for obj, field in still]}))


def page(conn, run_id: str, after: int, limit: int) -> list[dict]:
    """`limit` items after seq `after`, each with its seq."""
    return fetch_all(conn, dict, Q.page, {"run": run_id, "after": after, "limit": limit})


def page_by_object(conn, run_id: str, after: tuple[str, str], limit: int) -> list[dict]:
    """`limit` items after the (object, field) pair `after` (("", "") for the first), ordered by object and
    field, so that an object's fields come together."""
    return fetch_all(conn, dict, Q.page_by_object, {"run": run_id, "object": after[0], "field": after[1],
                                                      "limit": limit})


def count(conn, run_id: str) -> int:
    return fetch_value(conn, Q.count, {"run": run_id})


def objects(conn, run_id: str, kind: str, after: tuple[str, str], limit: int = 100) -> list[tuple[str, str]]:
    """(account key, object id) of the run's drifted objects of one kind, a page after `after`."""
    rows = conn.execute(Q.objects, {"run": run_id, "kind": kind, "account": after[0], "after": after[1],
                                    "limit": limit}).fetchall()
    return [(account, obj) for account, obj in rows]


def see(conn, run_id: str, account: str, kind: str, ids: list[str]) -> None:
    """Remember that the run listed or read these objects."""
    if ids:
        conn.execute(Q.see, {"run": run_id, "account": account, "kind": kind, "ids": ids})


def seen(conn, run_id: str, account: str, kind: str, ids: list[str]) -> set[str]:
    """Which of these objects the run has listed or read."""
    if not ids:
        return set()
    return set(fetch_column(conn, Q.seen, {"run": run_id, "account": account, "kind": kind, "ids": ids}))


def seen_all(conn, run_id: str, account: str, kind: str) -> list[str]:
    """Every object of one kind the run has seen in an account (for kinds that stay few)."""
    return fetch_column(conn, Q.seen_all, {"run": run_id, "account": account, "kind": kind})


def forget_seen(conn, run_id: str) -> None:
    """Drop a finished run's seen objects (they serve only while it runs)."""
    conn.execute(Q.forget, {"run": run_id})
