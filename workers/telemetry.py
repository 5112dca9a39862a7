"""The counters and histograms each process keeps for GET /metrics (webhooks/metrics.py sums them).

prometheus-client's multiprocess mode: every process (gunicorn's workers, the RQ workers) adds to its
own memory-mapped file in one directory (PROMETHEUS_MULTIPROC_DIR), a few microseconds and no network
round trip per count; /metrics sums the files of every process, the dead ones' included, so a killed
process's counts are neither lost nor counted twice (a counter's file outlives its process; a new
process gets a file of its own). The commands open the directory (teachery_sync/metrics_dir.py) before
the first count; a process that never does (a test, a script) counts in memory, and nothing reads it.

Every label has a small fixed set of values: a refusal's reason is one of REFUSAL_REASONS, never the
error's text; an event type we have no handler for is `other`; an account is its id or `platform`, as
on the Stripe rate counters (only accounts we call).
"""
from __future__ import annotations

import os
import time
from datetime import UTC
from functools import cache

from prometheus_client import Counter, Histogram, values

from domain.ledger import EventStatus
from workers.rate_limit import label as account_label

ENVIRONMENT_KEY = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client reads the directory from there

# Why a webhook was answered without being stored (webhooks/receiver.py).
BAD_SIGNATURE = "bad_signature"  # missing, malformed, wrong secret, or outside the tolerance
NOT_AN_EVENT = "not_an_event"  # signed, but not a Stripe event (not JSON, no evt_… id, …)
TOO_LARGE = "too_large"  # over MAX_BODY_BYTES: 413
UNSTORABLE = "unstorable"  # a value PostgreSQL cannot hold (a \u0000, nested too deep): 400
UNAVAILABLE = "unavailable"  # the database is down: 503, Stripe retries
REFUSAL_REASONS = (BAD_SIGNATURE, NOT_AN_EVENT, TOO_LARGE, UNSTORABLE, UNAVAILABLE)

OTHER_TYPE = "other"
APPLIED = (EventStatus.PROCESSED, EventStatus.IGNORED)

# Not registered anywhere: /metrics reads the processes' files (MultiProcessCollector), never a registry.
WEBHOOKS_RECEIVED = Counter(
    "teachery_webhooks_received", "Webhooks stored and answered 200: a new event, or a duplicate of a stored one",
    ["outcome"], registry=None)
WEBHOOKS_REFUSED = Counter(
    "teachery_webhooks_refused", "Webhooks answered without storing them, by reason (" + ", ".join(REFUSAL_REASONS)
    + ")", ["reason"], registry=None)
EVENTS_APPLIED = Counter(
    "teachery_events_applied",
    "Attempts of the workers to apply an event, by type (the handled types, else other) and outcome "
    "(processed, ignored, waiting, failed)", ["type", "outcome"], registry=None)
RECEIPT_TO_APPLIED = Histogram(
    "teachery_event_receipt_to_applied_seconds",
    "Seconds from an event's receipt to its first becoming processed or ignored", ["outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 24 * 3600), registry=None)
STRIPE_ERRORS = Counter(
    "teachery_stripe_errors",
    "Stripe API calls that ended in an error other than a 429, per account and kind (not_found: a 404; "
    "rejected: another 4xx; unavailable: network, 5xx, authentication)", ["account", "kind"], registry=None)
ADMIN_ACTIONS = Counter(
    "teachery_admin_actions",
    "Admin actions per kind and outcome (succeeded, replayed: an idempotency key's earlier answer, rejected, "
    "unavailable: Stripe could not be asked, failed: an error of ours)", ["kind", "outcome"], registry=None)
DRIFT_FOUND = Counter(
    "teachery_reconciliation_drift_items_found",
    "Drift items (an object's field that differs from Stripe) that reconciliation runs found, per object kind",
    ["kind"], registry=None)
DRIFT_FIXED = Counter(
    "teachery_reconciliation_drift_items_fixed",
    "Drift items that reconciliation runs fixed (the field no longer differs), per object kind",
    ["kind"], registry=None)


def record_into(directory: str) -> None:
    """Count into `directory` from now on (once per process, before the first count). prometheus-client
    picks its value class when it is imported, from the environment: the commands choose the directory
    later (from Settings), so the class is chosen again here, as that import would have."""
    os.environ[ENVIRONMENT_KEY] = directory
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.get_value_class()


def counting_into() -> str | None:
    """The directory this process counts into (None: in memory only)."""
    return os.environ.get(ENVIRONMENT_KEY) if getattr(values.ValueClass, "_multiprocess", False) else None


def webhooks_received(new: int, duplicate: int) -> None:
    """A group of stored webhooks (webhooks/group_commit.py): one count per label, not per event."""
    if new:
        WEBHOOKS_RECEIVED.labels("new").inc(new)
    if duplicate:
        WEBHOOKS_RECEIVED.labels("duplicate").inc(duplicate)


def webhook_refused(reason: str) -> None:
    WEBHOOKS_REFUSED.labels(reason).inc()


@cache
def _handled_types() -> frozenset[str]:
    from workers.event_table import EVENT_HANDLERS  # here: the handlers import the Stripe client, which counts

    return frozenset(EVENT_HANDLERS)


def event_type_label(event_type: str) -> str:
    """The type's label: a type we have a handler for, else `other` (the label set stays small)."""
    return event_type if event_type in _handled_types() else OTHER_TYPE


def events_attempted(batch: list, outcomes: dict, now: float | None = None) -> None:
    """Count a committed batch's attempts; an event applied for the first time (it was not processed or
    ignored before) observes its time since receipt."""
    now = time.time() if now is None else now
    for event in batch:
        outcome = outcomes.get(event.id)
        if outcome is None:
            continue
        EVENTS_APPLIED.labels(event_type_label(event.type), outcome.status.value).inc()
        if outcome.status in APPLIED and event.status not in APPLIED:
            received = event.received_at if event.received_at.tzinfo else event.received_at.replace(tzinfo=UTC)
            RECEIPT_TO_APPLIED.labels(outcome.status.value).observe(max(0.0, now - received.timestamp()))


def stripe_error(account: str | None, kind: str) -> None:
    STRIPE_ERRORS.labels(account_label(account), kind).inc()


def admin_action(kind: str, outcome: str) -> None:
    ADMIN_ACTIONS.labels(kind, outcome).inc()


def drift(kind: str, *, found: int = 0, fixed: int = 0) -> None:
    if found:
        DRIFT_FOUND.labels(kind).inc(found)
    if fixed:
        DRIFT_FIXED.labels(kind).inc(fixed)

