"""Reconciliation runs (their scope, status and report) and the local side of the comparison."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg.types.json import Jsonb

from domain.accounts import in_scope, to_api, to_key
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
    changed_since: datetime | None
    applies: str | None  # the dry run whose drift this run fixes
    trigger: str  # admin, cli, nightly, weekly
    started_at: datetime | None
    finished_at: datetime | None
    checked: int
    fixed: int
    cursor: dict | None  # where the run is: {"lanes": {lane: {"account", "kind", "after"} or {"done": true}}}
    progress: dict  # objects checked, by account ("platform" or acct_…) and kind
    resumed: int
    error: str | None

    @property
    def scope(self) -> Scope:
        return Scope(self.account, self.customer, self.since, self.changed_since)


# At most one run per scope at a time. A run's scope is (account, customer, since, dry_run), compared
# exactly (null = "every"): a dry run never blocks a fixing run of the same objects, nor the reverse, and
# overlapping scopes (the platform-wide run and one account's) may run side by side.
MAX_QUEUED_RUNS = 20  # runs queued and not yet started, all scopes together


class ScopeBusy(Exception):
    """A run of the same scope is queued or running."""

    def __init__(self, run_id: str):
        super().__init__(f"a reconciliation run of this scope is already queued or running: {run_id}")
        self.run_id = run_id


class NotApplicable(Exception):
    """Only a succeeded dry run can be applied."""

    def __init__(self, run_id: str, kind: str, status: str):
        super().__init__(f"reconciliation {run_id} is a {status} {kind}: only a succeeded dry run can be applied")
        self.run_id = run_id


class TooManyQueued(Exception):
    """The queued-runs limit is reached."""

    def __init__(self, limit: int):
        super().__init__(f"too many reconciliation runs are queued ({limit}); try again when some have started")
        self.limit = limit


def create(conn, scope: Scope, dry_run: bool, *, max_queued: int | None = None, trigger: str = "admin",
           applies: str | None = None) -> str:
    """A queued run; returns its id. ScopeBusy when a run of this scope is queued or running (a run
    applying a dry run: one applying the same dry run); TooManyQueued when `max_queued` runs are queued
    already. (Checked and inserted under one lock.)"""
    params = {"dry_run": dry_run, "account": scope.account, "customer": scope.customer, "since": scope.since,
              "changed_since": scope.changed_since, "applies": applies, "trigger": trigger}
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


def recent(conn, *, before: str | None = None, limit: int = 50, account: str | None = None) -> list[Run]:
    """Runs newest first; `before`: the last run id of the previous page; `account` (a run's account:
    acct_… or `platform`): that account's runs only."""
    return fetch_all(conn, Run, Q.recent, {"before": before, "limit": limit, "account": account})


def advance(conn, run_id: str, *, lane: str, at: dict, checked: int, progress: dict, fixed: int) -> None:
    """Record where one lane of the run is (in the transaction of the page's drift): its cursor `at`, the
    page's objects checked, the lane's accounts' counts by kind (`progress`) and `fixed` more items fixed."""
    conn.execute(Q.advance, {"id": run_id, "lane": lane, "at": Jsonb(at), "checked": checked,
                             "progress": Jsonb(progress), "fixed": fixed})


def set_cursor(conn, run_id: str, cursor: dict) -> None:
    conn.execute(Q.set_cursor, {"id": run_id, "cursor": Jsonb(cursor)})


def finish(conn, run_id: str, status: str, error: str | None = None) -> None:
    conn.execute(Q.finish, {"id": run_id, "status": status, "error": error})


def hold(conn, run_id: str) -> None:
    """Mark this run as being worked on, for as long as `conn` (autocommit, not pooled) stays open."""
    conn.execute(Q.hold, {"id": run_id})


MAX_RESUMES = 5  # a run whose worker dies more often than this (a page that kills it, say) ends failed


def requeue_abandoned(conn) -> list[str]:
    """Put back in the queue (resumed + 1) the runs marked running whose job is gone (nobody holds their
    lock); the caller enqueues their jobs again, and the next worker resumes each from its cursor. A run
    resumed MAX_RESUMES times already ends failed instead."""
    requeued = []
    for run_id in fetch_column(conn, Q.running):
        if fetch_value(conn, Q.try_hold, {"id": run_id}):
            try:
                outcome = fetch_value(conn, Q.requeue, {"id": run_id, "max": MAX_RESUMES})
                if outcome == "queued":
                    requeued.append(run_id)
                elif outcome == "gave up":
                    finish(conn, run_id, "failed", f"its worker stopped {MAX_RESUMES + 1} times before it finished")
            finally:
                conn.execute(Q.release, {"id": run_id})
    return requeued


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


def unlisted_customers(conn, run_id: str, account: str, customer: str | None, after: str,
                       limit: int = 100) -> list[str]:
    """Customers we hold as live that the run's listing did not show (deleted in Stripe, perhaps): `limit`
    of them after `after`, in id order."""
    return fetch_column(conn, Q.unlisted_customers, {"run": run_id, "a": account, "cus": customer, "after": after,
                                                     "limit": limit})


def local_counts(conn, accounts: list[str], since: datetime | None) -> dict[str, int]:
    """How many rows of each kind we hold in these accounts (created since `since`): a run's size, guessed."""
    return fetch_one(conn, dict, Q.local_counts, {"a": accounts, "since": int(since.timestamp()) if since else 0})


def estimate_left(conn, run: Run) -> int | None:
    """How many objects the run has left to check, guessed from our own row counts of the accounts it has
    not finished, less what it checked of them; None for the scopes a count cannot guess (one customer,
    changed since, applying a dry run)."""
    if run.customer or run.changed_since or run.applies:
        return None
    accounts = in_scope(conn, run.account)
    lanes = lane_cursors(run, accounts)
    unfinished = [account for account in accounts if not lanes.get(lane_key(account), {}).get("done")]
    left = sum(local_counts(conn, unfinished, run.since).values())
    left -= sum(sum((run.progress.get(lane_key(account)) or {}).values()) for account in unfinished)
    return max(left, 0)


# --- lanes: a run reads its accounts side by side, each with a cursor of its own --------------------

APPLIED = "applied"  # the one lane of a run applying a dry run (its cursor names the account it is in)


def lane_key(account: str) -> str:
    """The lane (and the progress entry) of an account key: its acct_… id, or `platform`."""
    return to_api(account) or "platform"


def lane_cursors(run: Run, accounts: list[str]) -> dict[str, dict]:
    """Each lane's cursor ({"account", "kind", "after"}, or {"done": true} once the lane is finished) by
    lane key; a lane not begun is absent. Also reads the single cursor of runs recorded before lanes
    (the accounts one after the other): the accounts before it finished, the one it names in progress."""
    cursor = run.cursor or {}
    if "lanes" in cursor:
        return dict(cursor["lanes"])
    if not cursor:
        return {}
    if run.applies:
        return {APPLIED: cursor}
    at = to_key(cursor.get("account"))
    return {lane_key(account): ({"done": True} if account < at else cursor)
            for account in accounts if account <= at}


def local_charges(conn, account: str, charges: list[ChargeRef]) -> dict[str, dict]:
    """Our payment of each charge: its own row, else the placeholder a succeeded charge takes over."""
    if not charges:
        return {}
    params = {"a": account, "ids": [c.id for c in charges], "pis": [c.payment_intent for c in charges],
              "invs": [c.invoice for c in charges], "adopt": [c.succeeded for c in charges]}
    return {row.pop("id"): row for row in fetch_all(conn, dict, Q.local_charge, params)}


def placeholders(conn, account: str, scope: Scope, matched: list[int], after: str = "",
                 limit: int = 100) -> list[str]:
    """Payment intent (else invoice) ids of the payments we hold without a charge, in scope, but the
    rows in `matched` (placeholders a listed charge was compared with): `limit` of them after `after`."""
    return fetch_column(conn, Q.placeholders, {"a": account, "cus": scope.customer, "since": scope.since,
                                               "matched": matched, "after": after, "limit": limit})
