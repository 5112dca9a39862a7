"""What the console's reconciliation pages read besides a run's row and its drift page
(domain/reconciliations.py, domain/reconciliation_drift.py): drift counts for the list of runs, the runs
applying a dry run, and the customer each drift item belongs to."""
from __future__ import annotations

from domain.sql import fetch_all, load

Q = load("reconciliation_views")


def drift_counts(conn, run_ids: list[str], cap: int = 10_000) -> dict[str, int]:
    """How many drift items each run recorded, counted up to `cap` (a run at the cap has at least that many)."""
    if not run_ids:
        return {}
    rows = fetch_all(conn, dict, Q.drift_counts, {"ids": run_ids, "cap": cap})
    return {row["id"]: row["drift"] for row in rows}


def applied_by(conn, run_id: str) -> list[dict]:
    """The fixing runs applying this dry run ({id, status}), newest first."""
    return fetch_all(conn, dict, Q.applied_by, {"id": run_id})


def customers_of(conn, run_id: str, seqs: list[int]) -> dict[int, dict]:
    """Our customer ({customer_id, stripe_customer_id, name, email}) of each drift item we can tie to one, by seq."""
    if not seqs:
        return {}
    return {row.pop("seq"): row for row in fetch_all(conn, dict, Q.customers_of, {"run": run_id, "seqs": seqs})}
