"""A reconciliation run's report: its row, a page of its drift (keyset on seq), and while it runs its rate
and an estimate of the time left."""
from __future__ import annotations

from datetime import UTC, datetime

from domain import reconciliation_drift as drift_rows
from domain import reconciliations
from domain.reconciliations import Run
from webhooks.schemas import Drift, ReconciliationReport, drift_cursor, drift_seq

ALL_AT_ONCE = 1000  # the page size when a caller reads every page (the command line)


def report(conn, run: Run, *, after: int = 0, limit: int = 500) -> dict:
    """The report's JSON with the `limit` drift items after seq `after`."""
    items = drift_rows.page(conn, run.id, after, limit + 1)
    more = len(items) > limit
    items = items[:limit]
    extra = {"drift": [Drift.model_validate(item) for item in items],
             "drift_count": drift_rows.count(conn, run.id),
             "next_drift_after": drift_cursor(items[-1]["seq"]) if more else None}
    if run.status == "running":
        extra.update(_pace(conn, run))
    return ReconciliationReport.model_validate(run).model_copy(update=extra).answer()


def whole_report(conn, run: Run) -> dict:
    """The report with every drift item (read page by page)."""
    body = report(conn, run, limit=ALL_AT_ONCE)
    while body["next_drift_after"] is not None:
        more = report(conn, run, after=drift_seq(body["next_drift_after"]), limit=ALL_AT_ONCE)
        body["drift"] += more["drift"]
        body["next_drift_after"] = more["next_drift_after"]
    return body


def _pace(conn, run: Run) -> dict:
    """rate (objects checked per second since the run started) and eta_seconds (None when unknown)."""
    elapsed = (datetime.now(UTC) - run.started_at).total_seconds() if run.started_at else 0
    rate = run.checked / elapsed if elapsed > 0 else 0.0
    left = reconciliations.estimate_left(conn, run)
    eta = round(left / rate, 1) if left is not None and rate > 0 else None
    return {"rate": round(rate, 1), "eta_seconds": eta}
