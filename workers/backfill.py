"""Backfill: fetch the events Stripe kept (30 days) and feed the missed ones through the receiver's pipeline.

Every event goes the way a webhook goes: stored once per id in the ledger (source "backfill"), then
enqueued for the worker; events already in the ledger are only counted. Stripe lists events newest
first; they are stored oldest first, so the worker meets them in the order they happened.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from domain import ledger
from domain.accounts import in_scope, to_api
from domain.times import iso
from workers.commands import Backfill, Report, quiet
from workers.queueing import enqueue_event
from workers.services import Services
from workers.stripe_api import NotFound, StripeRejected, StripeUnavailable
from workers.stripe_pages import paginate

RETENTION = timedelta(days=30)  # Stripe's Events API keeps events for 30 days
CHUNK = 100  # events stored per transaction


class BackfillError(Exception):
    """The backfill cannot start or go on (a one-line reason); `tallies` holds what was done before."""

    def __init__(self, message: str, tallies: list | None = None):
        super().__init__(message)
        self.tallies = tallies or []


@dataclass
class Tally:
    account: str  # storage key: '' is the platform
    fetched: int = 0
    new: int = 0
    known: int = 0
    error: str | None = None

    def as_dict(self) -> dict:
        return {"account": to_api(self.account), "fetched": self.fetched, "new": self.new,
                "already_known": self.known, "error": self.error}


def window_start(since: datetime, now: datetime) -> tuple[datetime, bool]:
    """Where fetching starts: `since`, or 30 days ago when `since` is older (True when clamped)."""
    if since > now:
        raise BackfillError(f"--since {iso(since)} is in the future")
    oldest = now - RETENTION
    return (oldest, True) if since < oldest else (since, False)


def fetch_events(stripe, account: str, since: datetime, report: Report) -> list[dict]:
    """The events of one account created at or after `since`, oldest first, each naming its account."""
    label = f"{to_api(account) or 'platform'}: fetching events"
    events = []
    for event in paginate(stripe, "/v1/events", account=to_api(account), created={"gte": int(since.timestamp())}):
        if account and not event.get("account"):
            event["account"] = account  # the API's copy may lack the top-level account a webhook carries
        events.append(event)
        report(label, len(events), None)
    events.reverse()
    return sorted(events, key=lambda e: e.get("created") or 0)  # stable: same-second events keep Stripe's order


def feed_events(services: Services, account: str, events: list[dict], tally: Tally, report: Report) -> None:
    """Store each event once (as the receiver does) and enqueue the new ones, in order."""
    label = f"{to_api(account) or 'platform'}: recording"
    done = 0
    for start in range(0, len(events), CHUNK):
        chunk = events[start:start + CHUNK]
        with services.pool.connection() as conn:
            new = [e["id"] for e in chunk if ledger.record_event(conn, e, source="backfill")]
        for event_id in new:  # after the commit: the worker must find the row
            enqueue_event(services.queue, event_id)
        tally.new += len(new)
        tally.known += len(chunk) - len(new)
        done += len(chunk)
        report(label, done, len(events))


def backfill(services: Services, since: datetime, *, account: str | None = None, now: datetime | None = None,
             report: Report = quiet) -> list[Tally]:
    """The command line's way in: run_backfill(Backfill(since, account, now))."""
    return run_backfill(services, Backfill(since, account, now), report)


def run_backfill(services: Services, cmd: Backfill, report: Report = quiet) -> list[Tally]:
    """Fetch and feed the missed events of one account (acct_…) or of the platform and every known one."""
    if not services.stripe.configured:
        raise BackfillError("STRIPE_API_KEY is not set: the backfill reads Stripe's Events API")
    start, _ = window_start(cmd.since, cmd.now or datetime.now(UTC))
    with services.pool.connection() as conn:
        accounts = in_scope(conn, cmd.account)
    tallies = []
    for key in accounts:
        tally = Tally(key)
        tallies.append(tally)
        try:
            events = fetch_events(services.stripe, key, start, report)
        except StripeUnavailable as exc:
            raise BackfillError(f"cannot read events from Stripe: {exc}", tallies) from exc
        except (NotFound, StripeRejected) as exc:  # this account only (e.g. disconnected from the platform)
            tally.error = f"{type(exc).__name__}: {exc}"
            continue
        tally.fetched = len(events)
        feed_events(services, key, events, tally, report)
    return tallies
