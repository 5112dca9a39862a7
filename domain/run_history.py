"""What finished reconciliation runs say: the last success that covered every account (the nightly
run's starting point, and a metric), and the objects a run found drifted, per account (a metric)."""
from __future__ import annotations

from datetime import datetime

from domain.accounts import PLATFORM, known
from domain.sql import fetch_all, fetch_value, load

Q = load("run_history")



def last_full_start(conn) -> datetime | None:
    """When the latest succeeded fixing run of every account, customer and object started (None: never)."""
    return fetch_value(conn, Q.last_full_start)


def last_full_successes(conn) -> dict[str, datetime]:
    """When the latest such run finished, by trigger (admin, cli, nightly, weekly)."""
    return {row["trigger"]: row["finished_at"] for row in fetch_all(conn, dict, Q.last_full_successes)}


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
