"""Reconciliation runs (their scope, status and report) and the local side of the comparison."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg.types.json import Jsonb

from domain.sql import fetch_all, fetch_column, fetch_one, fetch_value, load

Q = load("reconciliations")

STATUSES = ("queued", "running", "succeeded", "failed")


@dataclass(frozen=True)
class Scope:
    account: str | None = None  # acct_…; None: the platform and every known account
    customer: str | None = None  # cus_…
    since: datetime | None = None
    changed_since: datetime | None = None  # objects an event named since this time (the nightly run)


@dataclass
class Run:
    id: str
    status: str
    dry_run: bool
    account: str | None
    customer: str | None
    since: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    checked: int
    fixed: int
    drift: list
    error: str | None

    @property
    def scope(self) -> Scope:
        return Scope(self.account, self.customer, self.since)


# At most one run per scope at a time. A run's scope is (account, customer, since, dry_run), compared
# exactly (null = "every"): a dry run never blocks a fixing run of the same objects, nor the reverse, and
# overlapping scopes (the platform-wide run and one account's) may run side by side.
MAX_QUEUED_RUNS = 20  # runs queued and not yet started, all scopes together


class ScopeBusy(Exception):
    """A run of the same scope is queued or running."""

    def __init__(self, run_id: str):
        super().__init__(f"a reconciliation run of this scope is already queued or running: {run_id}")
        self.run_id = run_id


class TooManyQueued(Exception):
    """The queued-runs limit is reached."""

    def __init__(self, limit: int):
        super().__init__(f"too many reconciliation runs are queued ({limit}); try again when some have started")
        self.limit = limit


def create(conn, scope: Scope, dry_run: bool, *, max_queued: int | None = None, trigger: str = "admin") -> str:
    """A queued run; returns its id. ScopeBusy when a run of this scope is queued or running;
    TooManyQueued when `max_queued` runs are queued already. (Checked and inserted under one lock.)
    `trigger`: what started it (admin, cli, nightly, weekly)."""
    params = {"dry_run": dry_run, "account": scope.account, "customer": scope.customer, "since": scope.since,
              "changed_since": scope.changed_since, "trigger": trigger}
    with conn.transaction():
        conn.execute(Q.lock_runs)
        busy = fetch_value(conn, Q.active_in_scope, params)
        if busy:
            raise ScopeBusy(busy)
        if max_queued is not None and fetch_value(conn, Q.count_queued) >= max_queued:
            raise TooManyQueued(max_queued)
        return fetch_value(conn, Q.create, params)


def fail_queued(conn, run_id: str, error: str) -> bool:
    """End a run as failed if it has not started; False when it had."""
    return fetch_value(conn, Q.fail_queued, {"id": run_id, "error": error}) is not None


def queued_before(conn, seconds: int) -> list[str]:
    """Ids of runs queued longer ago than `seconds` and not started."""
    return fetch_column(conn, Q.queued_before, {"s": seconds})


def claim(conn, run_id: str) -> Run | None:
    """Mark a queued run running; None when it is missing or already started."""
    return fetch_one(conn, Run, Q.claim, {"id": run_id})


def get(conn, run_id: str) -> Run | None:
    return fetch_one(conn, Run, Q.get, {"id": run_id})


def save(conn, run_id: str, *, checked: int, fixed: int, drift: list[dict]) -> None:
    """Record the report so far."""
    conn.execute(Q.save, {"id": run_id, "checked": checked, "fixed": fixed, "drift": Jsonb(drift)})


def finish(conn, run_id: str, status: str, error: str | None = None) -> None:
    conn.execute(Q.finish, {"id": run_id, "status": status, "error": error})


def hold(conn, run_id: str) -> None:
    """Mark this run as being worked on, for as long as `conn` (autocommit, not pooled) stays open."""
    conn.execute(Q.hold, {"id": run_id})


def fail_abandoned(conn) -> list[str]:
    """End as failed the runs marked running whose job is gone (nobody holds their lock)."""
    ended = []
    for run_id in fetch_column(conn, Q.running):
        if fetch_value(conn, Q.try_hold, {"id": run_id}):
            try:
                finish(conn, run_id, "failed", "the worker running it stopped before the run finished")
                ended.append(run_id)
            finally:
                conn.execute(Q.release, {"id": run_id})
    return ended


# --- our side of the comparison: the compared fields, keyed by Stripe id --------------------------

LOCAL = {kind: getattr(Q, f"local_{kind}") for kind in ("customer", "subscription", "refund", "payment")}


@dataclass(frozen=True)
class ChargeRef:
    """A Stripe charge as our side of the comparison looks it up: by its id, or (succeeded only) by the
    placeholder of its payment intent or invoice."""
    id: str
    payment_intent: str | None = None
    invoice: str | None = None
    succeeded: bool = False


def local_rows(conn, kind: str, account: str, ids: list[str]) -> dict[str, dict]:
    """Our rows of one kind (customer, subscription, charge, refund, payment) for these Stripe ids (a
    `payment` is a payment intent or invoice id; charges by id only: see local_charges)."""
    if kind == "charge":
        return local_charges(conn, account, [ChargeRef(i) for i in ids])
    if not ids:
        return {}
    return {row.pop("id"): row for row in fetch_all(conn, dict, LOCAL[kind], {"a": account, "ids": ids})}


def local_charges(conn, account: str, charges: list[ChargeRef]) -> dict[str, dict]:
    """Our payment of each charge: its own row, else the placeholder a succeeded charge takes over."""
    if not charges:
        return {}
    params = {"a": account, "ids": [c.id for c in charges], "pis": [c.payment_intent for c in charges],
              "invs": [c.invoice for c in charges], "adopt": [c.succeeded for c in charges]}
    return {row.pop("id"): row for row in fetch_all(conn, dict, Q.local_charge, params)}


def placeholders(conn, account: str, scope: Scope, matched: list[int]) -> list[str]:
    """Payment intent (else invoice) ids of the payments we hold without a charge, in scope, but the
    rows in `matched` (placeholders a listed charge was compared with)."""
    return fetch_column(conn, Q.placeholders, {"a": account, "cus": scope.customer, "since": scope.since,
                                               "matched": matched})


def unlisted_customers(conn, account: str, customer: str | None, listed: list[str]) -> list[str]:
    """Customers we hold as live that a Stripe listing did not show (deleted in Stripe, perhaps)."""
    return fetch_column(conn, Q.unlisted_customers, {"a": account, "cus": customer, "listed": listed})
