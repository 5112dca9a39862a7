"""Reconciliation runs (their scope, status and report) and the local side of the comparison."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb

from domain.times import iso, parse_iso

STATUSES = ("queued", "running", "succeeded", "failed")
DRIFT_KEYS = ("object", "field", "local", "stripe", "fixed")


@dataclass(frozen=True)
class Scope:
    account: str | None = None  # acct_…; None: the platform and every known account
    customer: str | None = None  # cus_…
    since: datetime | None = None


ID_PREFIXES = {"account": "acct_", "customer": "cus_"}
_ID_TAIL = re.compile(r"[A-Za-z0-9_]{1,250}")
REQUEST_KEYS = ("account", "customer", "since", "dry_run")


def parse_request(body) -> tuple[Scope, bool]:
    """The run a request ({"account"?, "customer"?, "since"?, "dry_run"?}) asks for; ValueError saying what is wrong."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    unknown = sorted(set(body) - set(REQUEST_KEYS))
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(unknown)} (allowed: {', '.join(REQUEST_KEYS)})")
    ids = {}
    for key, prefix in ID_PREFIXES.items():
        value = body.get(key)
        if value is not None and not (isinstance(value, str) and value.startswith(prefix)
                                      and _ID_TAIL.fullmatch(value[len(prefix):])):
            raise ValueError(f"{key} must be a Stripe {key} id ({prefix}…) or null")
        ids[key] = value
    since = body.get("since")
    if since is not None:
        try:
            since = parse_iso(since)
        except ValueError:
            raise ValueError("since must be an ISO 8601 time, e.g. 2026-11-01T00:00:00Z") from None
    dry_run = False if body.get("dry_run") is None else body["dry_run"]
    if not isinstance(dry_run, bool):
        raise ValueError("dry_run must be true or false")
    return Scope(ids["account"], ids["customer"], since), dry_run


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


_COLS = "id, status, dry_run, account, customer, since, started_at, finished_at, checked, fixed, drift, error"

CREATE = ("INSERT INTO reconciliation_runs (dry_run, account, customer, since)"
          " VALUES (%(dry_run)s, %(account)s, %(customer)s, %(since)s) RETURNING id")
# Only a queued run starts: a second copy of its job finds it running or finished and does nothing.
CLAIM = (f"UPDATE reconciliation_runs SET status = 'running', started_at = now()"
         f" WHERE id = %(id)s AND status = 'queued' RETURNING {_COLS}")
SAVE = ("UPDATE reconciliation_runs SET checked = %(checked)s, fixed = %(fixed)s, drift = %(drift)s"
        " WHERE id = %(id)s")
FINISH = ("UPDATE reconciliation_runs SET status = %(status)s, finished_at = now(), error = %(error)s,"
          " started_at = COALESCE(started_at, now()) WHERE id = %(id)s")


# At most one run per scope at a time. A run's scope is (account, customer, since, dry_run), compared
# exactly (null = "every"): a dry run never blocks a fixing run of the same objects, nor the reverse, and
# overlapping scopes (the platform-wide run and one account's) may run side by side.
MAX_QUEUED_RUNS = 20  # runs queued and not yet started, all scopes together
_RUNS_LOCK = "SELECT pg_advisory_xact_lock(hashtext('reconciliation-runs'))"
ACTIVE_IN_SCOPE = (
    "SELECT id FROM reconciliation_runs WHERE status IN ('queued', 'running')"
    " AND account IS NOT DISTINCT FROM %(account)s AND customer IS NOT DISTINCT FROM %(customer)s"
    " AND since IS NOT DISTINCT FROM %(since)s AND dry_run = %(dry_run)s ORDER BY created_at LIMIT 1"
)
COUNT_QUEUED = "SELECT count(*) FROM reconciliation_runs WHERE status = 'queued'"


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


def create(conn, scope: Scope, dry_run: bool, *, max_queued: int | None = None) -> str:
    """A queued run; returns its id. ScopeBusy when a run of this scope is queued or running;
    TooManyQueued when `max_queued` runs are queued already. (Checked and inserted under one lock.)"""
    params = {"dry_run": dry_run, "account": scope.account, "customer": scope.customer, "since": scope.since}
    with conn.transaction():
        conn.execute(_RUNS_LOCK)
        busy = conn.execute(ACTIVE_IN_SCOPE, params).fetchone()
        if busy:
            raise ScopeBusy(busy[0])
        if max_queued is not None and conn.execute(COUNT_QUEUED).fetchone()[0] >= max_queued:
            raise TooManyQueued(max_queued)
        return conn.execute(CREATE, params).fetchone()[0]


def fail_queued(conn, run_id: str, error: str) -> bool:
    """End a run as failed if it has not started; False when it had."""
    return conn.execute("UPDATE reconciliation_runs SET status = 'failed', finished_at = now(), error = %(error)s"
                        " WHERE id = %(id)s AND status = 'queued' RETURNING id",
                        {"id": run_id, "error": error}).fetchone() is not None


def queued_before(conn, seconds: int) -> list[str]:
    """Ids of runs queued longer ago than `seconds` and not started."""
    rows = conn.execute("SELECT id FROM reconciliation_runs WHERE status = 'queued'"
                        " AND created_at < now() - make_interval(secs => %(s)s)", {"s": seconds}).fetchall()
    return [r[0] for r in rows]


def claim(conn, run_id: str) -> Run | None:
    """Mark a queued run running; None when it is missing or already started."""
    return conn.cursor(row_factory=class_row(Run)).execute(CLAIM, {"id": run_id}).fetchone()


def get(conn, run_id: str) -> Run | None:
    cur = conn.cursor(row_factory=class_row(Run))
    return cur.execute(f"SELECT {_COLS} FROM reconciliation_runs WHERE id = %(id)s", {"id": run_id}).fetchone()


def save(conn, run_id: str, *, checked: int, fixed: int, drift: list[dict]) -> None:
    """Record the report so far."""
    conn.execute(SAVE, {"id": run_id, "checked": checked, "fixed": fixed, "drift": Jsonb(drift)})


def finish(conn, run_id: str, status: str, error: str | None = None) -> None:
    conn.execute(FINISH, {"id": run_id, "status": status, "error": error})


# A job running a reconciliation holds this session-level advisory lock on a connection of its own;
# PostgreSQL releases it when that connection goes, so a run left `running` by a killed worker is
# found: nobody holds its lock.
_LOCK = "SELECT pg_advisory_lock(hashtext('reconciliation:' || %(id)s))"
_TRY_LOCK = "SELECT pg_try_advisory_lock(hashtext('reconciliation:' || %(id)s))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtext('reconciliation:' || %(id)s))"


def hold(conn, run_id: str) -> None:
    """Mark this run as being worked on, for as long as `conn` (autocommit, not pooled) stays open."""
    conn.execute(_LOCK, {"id": run_id})


def fail_abandoned(conn) -> list[str]:
    """End as failed the runs marked running whose job is gone (nobody holds their lock)."""
    ended = []
    for (run_id,) in conn.execute("SELECT id FROM reconciliation_runs WHERE status = 'running'").fetchall():
        if conn.execute(_TRY_LOCK, {"id": run_id}).fetchone()[0]:
            try:
                finish(conn, run_id, "failed", "the worker running it stopped before the run finished")
                ended.append(run_id)
            finally:
                conn.execute(_UNLOCK, {"id": run_id})
    return ended


def report(run: Run) -> dict:
    """The run as GET /admin/api/reconciliations/{id} shows it (CONTRACT.md); `error` only when failed."""
    body = {
        "id": run.id, "status": run.status, "dry_run": run.dry_run,
        "scope": {"account": run.account, "customer": run.customer, "since": iso(run.since)},
        "started_at": iso(run.started_at), "finished_at": iso(run.finished_at),
        "checked": run.checked, "fixed": run.fixed,
        "drift": [{key: item.get(key) for key in DRIFT_KEYS} for item in run.drift],  # jsonb sorts keys
    }
    if run.status == "failed":
        body["error"] = run.error
    return body


# --- our side of the comparison: the compared fields, keyed by Stripe id --------------------------

LOCAL = {
    "customer": "SELECT stripe_customer_id AS id, name, email, deleted_in_stripe, stripe_created FROM customers"
                " WHERE account = %(a)s AND stripe_customer_id = ANY(%(ids)s)",
    "subscription": "SELECT stripe_subscription_id AS id, status, pause_collection, cancel_at_period_end, cancel_at,"
                    " canceled_at, ended_at, current_period_end, stripe_created FROM subscriptions"
                    " WHERE account = %(a)s AND stripe_subscription_id = ANY(%(ids)s)",
    "charge": "SELECT stripe_charge_id AS id, amount, currency, charge_status AS status, amount_refunded,"
              " stripe_created FROM payments WHERE account = %(a)s AND stripe_charge_id = ANY(%(ids)s)",
    "refund": "SELECT stripe_refund_id AS id, amount, status, stripe_created FROM refunds"
              " WHERE account = %(a)s AND stripe_refund_id = ANY(%(ids)s)",
}

# Customers we hold as live that a Stripe listing did not show (deleted in Stripe, perhaps).
UNLISTED_CUSTOMERS = (
    "SELECT stripe_customer_id FROM customers WHERE account = %(a)s AND NOT deleted_in_stripe"
    " AND (%(cus)s::text IS NULL OR stripe_customer_id = %(cus)s) AND NOT stripe_customer_id = ANY(%(listed)s)"
    " ORDER BY stripe_customer_id"
)


def local_rows(conn, kind: str, account: str, ids: list[str]) -> dict[str, dict]:
    """Our rows of one kind (customer, subscription, charge, refund) for these Stripe ids."""
    if not ids:
        return {}
    rows = conn.cursor(row_factory=dict_row).execute(LOCAL[kind], {"a": account, "ids": ids}).fetchall()
    return {row.pop("id"): row for row in rows}


def unlisted_customers(conn, account: str, customer: str | None, listed: list[str]) -> list[str]:
    return [r[0] for r in conn.execute(UNLISTED_CUSTOMERS, {"a": account, "cus": customer, "listed": listed})]
