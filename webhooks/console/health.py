"""Health: the figures of /metrics for a person, with events received and applied per minute as a chart
(inline SVG drawn here, with its figures as text too).

A token scoped to one account sees that account's figures only: its events' counts, age and rate, its
latest reconciliation run and its drift. RQ's queues and workers serve every account: that section (and
RQ's dashboard) is for unscoped tokens only."""
from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, render_template, request
from rq import Worker

from domain import ledger, reconciliation_drift, reconciliations, run_history
from domain.accounts import run_account
from webhooks import current
from webhooks.auth import scope
from workers.queueing import reconciliation_queue

bp = Blueprint("console_health", __name__)

HOURS = (1, 3, 6, 12, 24)
DEFAULT_HOURS = 3
WIDTH, HEIGHT, PAD = 960, 200, 34  # the chart's viewBox, and its left/bottom margin for the scale


@dataclass
class Chart:
    """Per-minute counts drawn as two lines: received and applied."""
    minutes: list[dict]
    peak: int
    received: str  # the polylines' points
    applied: str
    ticks: list[tuple[float, str]]  # x, label (UTC hour:minute)

    @property
    def total_received(self) -> int:
        return sum(m["received"] for m in self.minutes)

    @property
    def total_applied(self) -> int:
        return sum(m["applied"] for m in self.minutes)

    @property
    def busiest(self) -> dict | None:
        return max(self.minutes, key=lambda m: m["received"]) if self.total_received else None


def chart(minutes: list[dict]) -> Chart:
    peak = max([1, *(max(m["received"], m["applied"]) for m in minutes)])
    step = (WIDTH - PAD) / max(len(minutes) - 1, 1)

    def points(key: str) -> str:
        return " ".join(f"{PAD + i * step:.1f},{HEIGHT - PAD - m[key] / peak * (HEIGHT - PAD - 8):.1f}"
                        for i, m in enumerate(minutes))

    every = max(len(minutes) // 6, 1)
    ticks = [(PAD + i * step, m["minute"].strftime("%H:%M")) for i, m in enumerate(minutes) if i % every == 0]
    return Chart(minutes, peak, points("received"), points("applied"), ticks)


def _hours(text: str | None) -> tuple[int, str | None]:
    if not text:
        return DEFAULT_HOURS, None
    if text.isdigit() and int(text) in HOURS:
        return int(text), None
    return DEFAULT_HOURS, f"Hours must be one of {', '.join(map(str, HOURS))}; showing the last {DEFAULT_HOURS}."


def _jobs(services) -> dict:
    """RQ's side: jobs waiting per queue, started and failed jobs, and the workers alive (their heartbeats)."""
    queues = (services.queue, reconciliation_queue(services.queue))
    depth = {queue.name: queue.count for queue in queues}
    workers = sorted(Worker.all(connection=services.redis), key=lambda w: w.name)
    return {"depth": depth, "started": sum(q.started_job_registry.count for q in queues),
            "failed": sum(q.failed_job_registry.count for q in queues), "workers": workers}


@bp.get("/health", endpoint="overview")
def overview():
    hours, error = _hours(request.args.get("hours"))
    services = current.services()
    own = scope()  # a scoped token: every figure is of its account; the shared queues and workers are hidden
    with services.pool.connection() as conn:
        counts = ledger.status_counts(conn, account=own)
        oldest = ledger.oldest_unapplied_age(conn, own)
        minutes = ledger.per_minute(conn, hours * 60, own)
        last_runs = reconciliations.recent(conn, limit=1, account=None if own is None else run_account(own))
        last_run = last_runs[0] if last_runs else None
        drift = reconciliation_drift.count(conn, last_run.id) if last_run else None
        drift_by_account = run_history.drift_objects_by_account(conn)
    if own is not None:
        drift_by_account = {key: n for key, n in drift_by_account.items() if key == own}
    return render_template("console/health.html", counts=counts, oldest=oldest, chart=chart(minutes), hours=hours,
                           hour_choices=HOURS, error=error, jobs=_jobs(services) if own is None else None,
                           last_run=last_run, drift=drift, drift_by_account=drift_by_account, width=WIDTH,
                           height=HEIGHT, pad=PAD)
