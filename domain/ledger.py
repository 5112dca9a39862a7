"""The event ledger: every Stripe event we received, once per id, with its processing state."""
from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from psycopg import sql
from psycopg.types.json import Jsonb

from domain.accounts import PLATFORM_NAME, to_key
from domain.ids import is_account_id
from domain.sql import compose, fetch_all, fetch_column, fetch_column_raw, fetch_one, fetch_value, load

Q = load("ledger")


class EventStatus(str, enum.Enum):
    RECEIVED = "received"
    PROCESSED = "processed"
    IGNORED = "ignored"
    WAITING = "waiting"
    FAILED = "failed"


STATUSES = tuple(s.value for s in EventStatus)
# The statuses the event list filters on: `processing` was never stored, and still matches nothing rather
# than being refused.
LIST_STATUSES = (*STATUSES, "processing")


@dataclass
class LedgerEvent:
    id: str
    account: str
    type: str
    api_version: str | None
    created: int
    status: str
    attempts: int
    last_error: str | None
    waiting_on: str | None
    received_at: datetime
    processed_at: datetime | None
    next_attempt_at: datetime | None = None
    scheduled_attempts: int = 0
    source: str = "webhook"
    payload: dict | None = None


class AttemptKind(str, enum.Enum):
    AUTOMATIC = "automatic"  # the first try and the scheduled retries
    WAKE = "wake"  # what the event waited for was just recorded by another event
    REPLAY = "replay"  # an operator's extra attempt: never moves the retry schedule


# record_events's parameters are PostgreSQL's own $1, $2…, the one exception: above 50 parameters
# psycopg parses a %s statement again on every call (300 µs for a group of 8 events, against 14 µs once
# cached, on the receiver's hot path), while a $n statement goes as it is (fetch_column_raw).
_EVENT_FIELDS = ("id", "account", "type", "api_version", "created", "payload", "source")


@cache
def _record_statement(accounts: int, events: int) -> str:
    """The statement for this many accounts and events (a few shapes: psycopg prepares each once)."""
    numbers = itertools.count(1)
    account_rows = [sql.SQL(Q.account_row).format(account=sql.SQL(f"${next(numbers)}")) for _ in range(accounts)]
    event_rows = [sql.SQL(Q.event_row).format(**{field: sql.SQL(f"${next(numbers)}") for field in _EVENT_FIELDS})
                  for _ in range(events)]
    return compose(Q.record_events, accounts=sql.SQL(", ").join(account_rows), events=sql.SQL(", ").join(event_rows))


def record_event(conn, event: dict, *, raw: bytes | str | None = None, source: str = "webhook") -> bool:
    """Store a raw event once per id; True when it was new. (record_events, for one.)"""
    return bool(record_events(conn, [(event, raw)], source=source))


def record_events(conn, events: list[tuple[dict, bytes | str | None]], *, source: str = "webhook") -> set[str]:
    """Store raw events once per id, in one statement; the ids that were new.

    Each event comes with its body as received (or None): stored as it is (PostgreSQL parses it into
    jsonb), which also saves serialising the parsed event again. An id given twice is stored once. A
    body PostgreSQL cannot store (a \\u0000 escape) raises psycopg.DataError, for the whole statement.
    """
    rows: dict[str, tuple] = {}
    for event, raw in events:
        if event["id"] in rows:
            continue
        created = event.get("created")
        api_version = event.get("api_version")
        rows[event["id"]] = (
            event["id"], to_key(event.get("account")), event["type"],
            api_version if isinstance(api_version, str) else None,
            created if isinstance(created, int) and not isinstance(created, bool) else 0,
            (raw.decode() if isinstance(raw, bytes) else raw) if raw is not None else Jsonb(event),
            source,
        )
    if not rows:
        return set()
    accounts = sorted({row[1] for row in rows.values()})
    params = [*accounts, *(value for row in rows.values() for value in row)]
    return set(fetch_column_raw(conn, _record_statement(len(accounts), len(rows)), params))


def never_started(conn, event_ids: list[str]) -> set[str]:
    """Of these stored events, those still `received`: a redelivered event whose first drain request
    was lost (Redis down at the time) asks for one again."""
    return set(fetch_column(conn, Q.never_started, {"ids": event_ids}))


def get_event(conn, event_id: str, *, with_payload: bool = False) -> LedgerEvent | None:
    query = Q.get_event_with_payload if with_payload else Q.get_event
    return fetch_one(conn, LedgerEvent, query, {"id": event_id})




def account_filter(text: str | None) -> str | None:
    """The stored account key that `acct_…` or `platform` names (None: no filter); ValueError otherwise."""
    if text is None:
        return None
    if text == PLATFORM_NAME:
        return to_key(None)
    if not is_account_id(text):
        raise ValueError(f"account must be an acct_… id, or {PLATFORM_NAME}")
    return to_key(text)


# The list's filters, in the order they are written (see filter_* in ledger.sql).
LIST_FILTERS = ("status", "type", "since", "until", "account", "object")


@cache
def _filtered(template: str, filters: tuple[str, ...]) -> str:
    """The statement with the filters given (each a filter_* piece), once per combination."""
    pieces = [sql.SQL(getattr(Q, f"filter_{name}")) for name in filters]
    return compose(template, filters=sql.SQL(" AND ").join(pieces) if pieces else sql.SQL("TRUE"))


def list_events(conn, *, status: str | None = None, type_: str | None = None, since: datetime | None = None,
                until: datetime | None = None, account: str | None = None, object_id: str | None = None,
                before: tuple[datetime, str] | None = None, limit: int = 100) -> list[LedgerEvent]:
    """The ledger, newest first. `account` is the stored key ('' for the platform); `object_id` keeps the
    events about that Stripe object (its data.object, or an object that names it by id); `since`
    (inclusive) and `until` (exclusive) bound received_at; `before` is the keyset of the next page: the
    (received_at, id) of the previous page's last event."""
    params = {"status": status, "type": type_, "since": since, "until": until, "account": account,
              "object": object_id, "limit": limit,
              "before_at": before[0] if before else None, "before_id": before[1] if before else None}
    filters = tuple(f for f in LIST_FILTERS if params[f] is not None) + (("before",) if before else ())
    query = _filtered(Q.list_events, filters)
    return fetch_all(conn, LedgerEvent, query, params)


def changes_of(conn, event_id: str) -> list[dict]:
    """The records an event changed, from the activity it wrote."""
    return fetch_all(conn, dict, Q.changes_of, {"id": event_id})


def claim(conn, event_id: str) -> LedgerEvent | None:
    """Lock the event for this transaction; None when missing or another worker holds it."""
    return fetch_one(conn, LedgerEvent, Q.claim, {"id": event_id})


# Within one second, Stripe's order: what creates the customer, then payments, then refunds, then the
# charge's refunded state (which adds the refunds up), then subscriptions, then the rest. Claiming in
# this order makes waits (and the wake-ups and API calls they cost) rare; correctness never depends on it.
TYPE_RANKS = (
    ("checkout.session.completed", "customer.created"),
    ("charge.succeeded", "payment_intent.succeeded", "invoice.paid", "invoice.payment_succeeded"),
    ("refund.created", "refund.updated", "refund.failed", "charge.refund.updated"),
    ("charge.refunded",),
    ("customer.subscription.created",),
    ("customer.subscription.updated", "customer.subscription.paused", "customer.subscription.resumed"),
    ("customer.subscription.deleted",),
)
_RANK = {t: rank for rank, types in enumerate(TYPE_RANKS) for t in types}
OTHER_RANK = len(TYPE_RANKS)


def stripe_order(event: LedgerEvent) -> tuple:
    return (event.created, _RANK.get(event.type, OTHER_RANK), event.received_at)


# Claims are partitioned by customer: a transaction that claims events holds an advisory lock on each of
# their customers (until it ends, or its connection dies with a killed worker), and a claim skips the
# events of a customer another transaction holds. So two workers never apply one customer's events at
# once (no lock waits or deadlocks between their batches, no story split between two batches in
# flight), and each customer's events are applied in Stripe's order. An event's customer is the
# customer its object names (or is). A refund names only its charge: its customer is that of the
# charge's payment as recorded, else that of a charge event among the claim's candidates (another
# worker's batch may be recording it), else the charge stands for it. An object that names no
# customer is its own group.
LOCK_SPACE = 0x5453  # the advisory locks' first key: the customers' groups, apart from other advisory locks
CLAIM_SCAN = 4  # a claim looks this many times its limit ahead, past what other workers hold
_TYPE_RANK = sql.SQL(Q.type_rank).format(
    ranks=sql.SQL(" ").join(sql.SQL(Q.type_rank_when).format(type=sql.Literal(t), rank=sql.Literal(r))
                            for t, r in _RANK.items()),
    other=sql.Literal(OTHER_RANK))
_GROUPS = {"event_keys": Q.event_keys, "type_rank": _TYPE_RANK, "lock_space": sql.Literal(LOCK_SPACE)}
CLAIM_NEXT = compose(Q.claim_next, **_GROUPS)
LOCK_CUSTOMER_OF = compose(Q.lock_customer_of, **_GROUPS)


def claim_next(conn, *, limit: int, exclude: str = "") -> list[LedgerEvent]:
    """Lock up to `limit` events that no worker has applied yet, oldest first in Stripe's order,
    skipping those of customers another transaction holds (and locking these customers until this
    transaction ends)."""
    if limit <= 0:
        return []
    return fetch_all(conn, LedgerEvent, CLAIM_NEXT, {"exclude": exclude, "limit": limit, "scan": limit * CLAIM_SCAN})


def lock_customer_of(conn, event_id: str) -> None:
    """Hold this event's customer for the transaction, as a claim does (waiting while a batch holds it)."""
    conn.execute(LOCK_CUSTOMER_OF, {"id": event_id}).fetchall()


def exists(conn, event_id: str) -> bool:
    return fetch_value(conn, Q.exists, {"id": event_id}) is not None


@dataclass
class _Folded:
    """One event's attempts in a batch, summed as record_attempts takes them."""
    attempts: int = 0
    scheduled: int = 0  # the automatic ones (not replays)
    error: str | None = None  # the last attempt's
    sets: bool = False  # did one set the status (then `status` and `retry` are the last such one's)?
    status: str | None = None
    retry: int | None = None
    waiting_on: str | None = None  # the last status-setting attempt's, or a later replay's that names one
    applied: bool = False  # did one apply the event (processed or ignored)?


_FOLDED_COLUMNS = ("attempts", "scheduled", "error", "sets", "status", "retry", "waiting_on", "applied")


class Attempts:
    """Outcomes of a batch's attempts, logged and written together (two statements per batch instead of
    two per event), in the caller's transaction. Write them before reading the events' statuses.

    An automatic attempt or a wake-up sets the status and moves the retry schedule (`retry_in_seconds`:
    when to try next; None: no further automatic attempt). A replay that applies the event sets its
    status and ends the schedule; a replay that does not leaves status and schedule as they were.
    An event attempted more than once in a batch counts every attempt; the last one decides."""

    def __init__(self):
        self.logged: list[tuple[str, str, str, str | None]] = []  # (id, kind, status, error), in order
        self.folded: dict[str, _Folded] = {}

    def add(self, event_id: str, kind: AttemptKind, status: EventStatus, *, error: str | None = None,
            waiting_on: str | None = None, retry_in_seconds: int | None = None) -> None:
        self.logged.append((event_id, kind.value, status.value, error))
        applied = status in (EventStatus.PROCESSED, EventStatus.IGNORED)
        event = self.folded.setdefault(event_id, _Folded())
        event.attempts += 1
        event.error = error
        if kind is AttemptKind.REPLAY and not applied:  # only the error is news, and what it waits for
            event.waiting_on = waiting_on if waiting_on is not None else event.waiting_on
            return
        event.scheduled += kind is not AttemptKind.REPLAY
        event.sets, event.status, event.waiting_on = True, status.value, waiting_on
        event.retry = None if applied else retry_in_seconds
        event.applied = event.applied or applied

    def write(self, conn) -> None:
        if not self.logged:
            return
        with conn.cursor() as cur:
            cur.execute(Q.record_attempts, {"ids": list(self.folded)} | {
                name: [getattr(event, name) for event in self.folded.values()] for name in _FOLDED_COLUMNS})
            ids, kinds, statuses, errors = zip(*self.logged, strict=True)
            cur.execute(Q.log_attempts, {"ids": list(ids), "kinds": list(kinds), "statuses": list(statuses),
                                         "errors": list(errors)})
        self.logged, self.folded = [], {}


def attempts_log(conn, event_id: str) -> list[dict]:
    """Every attempt at an event, oldest first: {"at", "kind", "status", "error"}."""
    return fetch_all(conn, dict, Q.attempts_log, {"id": event_id})


def waiting_on(conn, account: str, object_ids: list[str]) -> list[str]:
    """Ids of events waiting for any of these Stripe objects."""
    if not object_ids:
        return []
    return fetch_column(conn, Q.waiting_on, {"account": account, "ids": object_ids})


def stranded(conn, *, older_than_seconds: int = 60, limit: int = 1000) -> list[tuple[str, str, int]]:
    """(id, status, scheduled_attempts) of events that a job should take now and that no worker holds:
    received longer ago than `older_than_seconds` (stored while Redis was down, or their worker
    was killed), or waiting/failed with their retry time come. A worker applying an event holds
    its row lock, and a killed worker's lock goes with its connection: SKIP LOCKED tells them apart."""
    return conn.execute(Q.stranded, {"age": older_than_seconds, "limit": limit}).fetchall()


def known(conn, event_ids: list[str]) -> list[str]:
    """The ids among these that the ledger holds, in the order given."""
    held = set(fetch_column(conn, Q.known, {"ids": list(event_ids)}))
    return [i for i in dict.fromkeys(event_ids) if i in held]


FIRST_KEY = (-(2**62), datetime(1, 1, 2, tzinfo=UTC), "")  # before every event's (created, received_at, id)


def ids_matching_page(conn, *, status: str | None = None, since: datetime | None = None,
                      account: str | None = None, after: tuple = FIRST_KEY, limit: int = 1000) -> list[tuple]:
    """The events in that status, received since then, of that account (a stored key), in Stripe's order,
    a page at a time: (id, created, received_at) rows after the
    key `after`, the last row being the next page's key."""
    params = {"status": status, "since": since, "account": account, "after_created": after[0],
              "after_received": after[1], "after_id": after[2], "limit": limit}
    filters = tuple(f for f in ("status", "since", "account") if params[f] is not None)
    return conn.execute(_filtered(Q.ids_matching_page, filters), params).fetchall()


def count_matching(conn, *, status: str | None = None, account: str | None = None) -> int:
    """How many events are in that status (of that account, a stored key)."""
    params = {"status": status, "account": account}
    return fetch_value(conn, _filtered(Q.count_matching, tuple(f for f in params if params[f] is not None)), params)


def count_by_status(conn) -> dict[str, int]:
    """How many events the ledger holds in each status (reads every event)."""
    return dict(conn.execute(Q.count_by_status).fetchall())


SETTLED = ("processed", "ignored")


def status_counts(conn, *, account: str | None = None, exact_below: int = 100_000) -> dict[str, int]:
    """Events per status for the gauges, without reading the whole ledger (count_by_status took 2 s at 10
    million events): the unsettled statuses exactly; processed and ignored exactly while the ledger holds
    fewer than `exact_below` events, then estimated: the live rows less the unsettled ones, shared out
    as the last ANALYZE (autovacuum's) found them. With `account` (a stored key, '' the platform): that
    account's received, waiting and failed events only (0 for a status it has none in), what a scoped
    admin token's pages show."""
    if account is not None:
        counts = dict.fromkeys(("received", "waiting", "failed"), 0)
        return counts | dict(conn.execute(Q.count_unsettled_of_account, {"account": account}).fetchall())
    live, values, shares = conn.execute(Q.events_statistics).fetchone() or (0, None, None)
    if live < exact_below or not values:
        return count_by_status(conn)
    counts = dict(conn.execute(Q.count_unsettled).fetchall())
    share = {v: f for v, f in zip(values, shares, strict=True) if v in SETTLED}
    settled = max(live - sum(counts.values()), 0)
    for status, fraction in share.items():
        counts[status] = round(settled * fraction / sum(share.values()))
    return counts


def oldest_unapplied_age(conn, account: str | None = None) -> float:
    """Seconds since the oldest event that is received or waiting arrived (0 when there is none); of one
    account's events when `account` (a stored key) is given."""
    if account is None:
        return float(fetch_value(conn, Q.oldest_unapplied))
    return float(fetch_value(conn, Q.oldest_unapplied_of_account, {"account": account}))


def per_minute(conn, minutes: int, account: str | None = None) -> list[dict]:
    """Events received and applied in each of the last `minutes` minutes, oldest first:
    {"minute", "received", "applied"} (0 for a quiet minute); of one account's events when `account`
    (a stored key) is given."""
    if account is None:
        return fetch_all(conn, dict, Q.per_minute, {"minutes": minutes})
    return fetch_all(conn, dict, Q.per_minute_of_account, {"minutes": minutes, "account": account})


def replays_done(conn, event_ids: list[str]) -> dict[str, int]:
    """How many replays each of these events has had (from the attempts log); missing ids count 0."""
    rows = conn.execute(Q.replays_done, {"ids": list(event_ids)}).fetchall()
    return {event_id: 0 for event_id in event_ids} | dict(rows)
