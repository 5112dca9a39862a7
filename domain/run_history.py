"""What finished reconciliation runs say: the last success that covered every account (the nightly
run's starting point, and a metric), and the drift rows a run found (read page by page, counted per
account for the metrics)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg.types.json import Jsonb

from domain.accounts import PLATFORM, known
from domain.sql import fetch_all, fetch_value, load

Q = load("run_history")


@dataclass(frozen=True)
class DriftRow:
    seq: int
    account: str | None  # None: the platform's own account
    kind: str
    object: str
    field: str
    local: object
    stripe: object
    fixed: bool


def last_full_start(conn) -> datetime | None:
    """When the latest succeeded fixing run of every account, customer and object started (None: never)."""
    return fetch_value(conn, Q.last_full_start)


def last_full_successes(conn) -> dict[str, datetime]:
    """When the latest such run finished, by trigger (admin, cli, nightly, weekly)."""
    return {row["trigger"]: row["finished_at"] for row in fetch_all(conn, dict, Q.last_full_successes)}


def drift_page(conn, run_id: str, after: int = 0, limit: int = 500) -> list[DriftRow]:
    """A run's drift rows with a seq above `after`, in the report's order."""
    return fetch_all(conn, DriftRow, Q.drift_page, {"run_id": run_id, "after": after, "limit": limit})


def record_drift(conn, run_id: str, account: str, kind: str, items: list[dict]) -> None:
    """A run's drift items of one kind and account as rows (again: their `fixed` is updated)."""
    with conn.cursor() as cur:
        cur.executemany(Q.record_drift, [
            {"run_id": run_id, "account": account or None, "kind": kind, "object": item["object"],
             "field": item["field"], "local": Jsonb(item["local"]), "stripe": Jsonb(item["stripe"]),
             "fixed": item["fixed"]} for item in items])


def drift_objects_by_account(conn) -> dict[str, int]:
    """Per known account (PLATFORM for the platform's own): the distinct objects found drifted by the
    latest succeeded run that covered it (of every account, or of that one; of every customer).
    Accounts no such run covered are left out."""
    latest = fetch_all(conn, dict, Q.latest_covering)
    everyone = next((run for run in latest if run["account"] is None), None)
    single = {run["account"]: run for run in latest if run["account"] is not None}
    chosen = {}
    for account in known(conn):
        runs = [run for run in (everyone, single.get(account)) if run is not None]
        if runs:
            chosen[account] = max(runs, key=lambda run: run["finished_at"])["id"]
    counts = {(row["run_id"], row["account"] or PLATFORM): row["objects"]
              for row in fetch_all(conn, dict, Q.drift_objects, {"runs": sorted(set(chosen.values()))})}
    return {account: counts.get((run_id, account), 0) for account, run_id in chosen.items()}
