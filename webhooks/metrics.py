"""GET /metrics: Prometheus gauges read from the ledger and RQ at scrape time, and the counters and
histograms every process keeps (workers/telemetry.py), summed.

The gauges are read at scrape time, so they are the same whichever gunicorn worker answers; the counters
(webhooks received and refused, events applied, Stripe errors, admin actions, drift) are each process's
own files in the metrics directory (prometheus-client's multiprocess mode), which MultiProcessCollector
sums: every gunicorn worker answers the same sums too.
"""
from __future__ import annotations

import os

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from domain import ledger, run_history
from webhooks import current
from webhooks.stripe_metrics import StripeRateCollector
from workers.services import Services

bp = Blueprint("metrics", __name__)


class LedgerCollector:
    """Events per ledger status, the age of the oldest event not yet applied, and RQ's queue."""

    def __init__(self, services: Services):
        self.services = services

    def collect(self):
        with self.services.pool.connection() as conn:
            counts = ledger.status_counts(conn)
            oldest = ledger.oldest_unapplied_age(conn)
        events = GaugeMetricFamily("teachery_events", "Events in the ledger by status", labels=["status"])
        for status in ledger.STATUSES:
            events.add_metric([status], counts.get(status, 0))
        yield events
        yield GaugeMetricFamily("teachery_oldest_unapplied_event_age_seconds",
                                "Age of the oldest event that is received or waiting (0 when none)", value=oldest)
        queue = self.services.queue
        jobs = GaugeMetricFamily("teachery_queue_jobs", "RQ jobs by state", labels=["state"])
        jobs.add_metric(["queued"], queue.count)
        jobs.add_metric(["started"], queue.started_job_registry.count)
        jobs.add_metric(["failed"], queue.failed_job_registry.count)
        yield jobs


class ReconciliationCollector:
    """What the reconciliation runs found and when the last one of every account succeeded (alert when
    that is older than about two days: the nightly run has not succeeded since)."""

    def __init__(self, services: Services):
        self.services = services

    def collect(self):
        with self.services.pool.connection() as conn:
            drifted = run_history.drift_objects_by_account(conn)
            successes = run_history.last_full_successes(conn)
        objects = GaugeMetricFamily(
            "teachery_reconciliation_drift_objects",
            "Objects found drifted by the latest succeeded reconciliation run that covered the account",
            labels=["account"])
        for account, count in sorted(drifted.items()):
            objects.add_metric([account or "platform"], count)
        yield objects
        if successes:
            yield GaugeMetricFamily(
                "teachery_reconciliation_last_success_timestamp",
                "Unix time the latest succeeded fixing run of every account finished",
                value=max(successes.values()).timestamp())
        by_trigger = GaugeMetricFamily(
            "teachery_reconciliation_last_success_by_trigger_timestamp",
            "Unix time the latest succeeded fixing run of every account finished, by what started it",
            labels=["trigger"])
        for trigger, finished_at in sorted(successes.items()):
            by_trigger.add_metric([trigger], finished_at.timestamp())
        yield by_trigger


@bp.get("/metrics")
def metrics():
    registry = CollectorRegistry()
    registry.register(LedgerCollector(current.services()))
    registry.register(StripeRateCollector(current.services()))
    registry.register(ReconciliationCollector(current.services()))
    counters = current.services().settings.metrics_dir
    if os.path.isdir(counters):  # absent until a process of the service opened it (teachery_sync/metrics_dir.py)
        MultiProcessCollector(registry, path=counters)
    # PostgreSQL or Redis down: their errors propagate to the app's handlers, a JSON 503 (webhooks/errors.py).
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
