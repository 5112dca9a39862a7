"""The event ledger: every Stripe event we received, once per id, with its processing state."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from domain.accounts import to_key
from domain.ids import is_account_id


class EventStatus(str, enum.Enum):
    RECEIVED = "received"
    PROCESSING = "processing"
    PROCESSED = "processed"
    IGNORED = "ignored"
    WAITING = "waiting"
    FAILED = "failed"


STATUSES = tuple(s.value for s in EventStatus)


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


# Several events in one statement (and so one commit): the receiver's group commit writes the
# webhooks in flight together. {accounts} and {events} are lists of placeholder rows; the bodies go as
# plain parameters (PostgreSQL parses each into jsonb), which costs far less than quoting them into arrays.
RECORD_EVENTS = """
WITH acct AS (
    INSERT INTO accounts (id) VALUES {accounts} ON CONFLICT DO NOTHING
)
INSERT INTO events (id, account, type, api_version, created, payload, source)
VALUES {events}
ON CONFLICT (id) DO NOTHING
RETURNING id
"""
_ACCOUNT_ROW = "(%s)"
_EVENT_ROW = "(%s, %s, %s, %s, %s, %s::jsonb, %s)"
_record_statements: dict[tuple[int, int], str] = {}


def _record_statement(accounts: int, events: int) -> str:
    """The statement for this many accounts and events (a few shapes: psycopg prepares each once)."""
    key = (accounts, events)
    if key not in _record_statements:
        _record_statements[key] = RECORD_EVENTS.format(accounts=", ".join([_ACCOUNT_ROW] * accounts),
                                                       events=", ".join([_EVENT_ROW] * events))
    return _record_statements[key]


_COLUMNS = ("id, account, type, api_version, created, status, attempts, last_error, waiting_on, received_at,"
            " processed_at, next_attempt_at, scheduled_attempts, source")


def record_event(conn, event: dict, *, raw: bytes | str | None = None, source: str = "webhook") -> bool:
    """Store a raw event once per id; True when it was new. (record_events, for one.)"""
    return bool(record_events(conn, [(event, raw)], source=source))


def record_events(conn, events: list[tuple[dict, bytes | str | None]], *, source: str = "webhook") -> set[str]:
    """Store raw events once per id, in one statement; the ids that were new.

    Each event comes with its body as received (or None): stored as it is (PostgreSQL parses it into
    jsonb), which also saves serialising the parsed event again. An id given twice is stored once. A
    body PostgreSQL cannot store (a \\u0000 escape) raises psycopg.DataError, for the whole statement.
    """
    rows: dict[str, list] = {}
    for event, raw in events:
        if event["id"] in rows:
            continue
        created = event.get("created")
        api_version = event.get("api_version")
        rows[event["id"]] = [
            event["id"], to_key(event.get("account")), event["type"],
            api_version if isinstance(api_version, str) else None,
            created if isinstance(created, int) and not isinstance(created, bool) else 0,
            (raw.decode() if isinstance(raw, bytes) else raw) if raw is not None else Jsonb(event),
            source,
        ]
    if not rows:
        return set()
    accounts = sorted({row[1] for row in rows.values()})
    params = [*accounts, *(value for row in rows.values() for value in row)]
    cur = conn.execute(_record_statement(len(accounts), len(rows)), params)
    return {row[0] for row in cur.fetchall()}


def never_started(conn, event_ids: list[str]) -> set[str]:
    """Of these stored events, those still `received`: a redelivered event whose first drain request
    was lost (Redis down at the time) asks for one again."""
    rows = conn.execute("SELECT id FROM events WHERE id = ANY(%(ids)s) AND status = 'received'", {"ids": event_ids})
    return {row[0] for row in rows}


def get_event(conn, event_id: str, *, with_payload: bool = False) -> LedgerEvent | None:
    cols = _COLUMNS + (", payload" if with_payload else "")
    cur = conn.cursor(row_factory=class_row(LedgerEvent))
    return cur.execute(f"SELECT {cols} FROM events WHERE id = %(id)s", {"id": event_id}).fetchone()


PLATFORM_NAME = "platform"


def account_filter(text: str | None) -> str | None:
    """The stored account key that `acct_…` or `platform` names (None: no filter); ValueError otherwise."""
    if text is None:
        return None
    if text == PLATFORM_NAME:
        return to_key(None)
    if not is_account_id(text):
        raise ValueError(f"account must be an acct_… id, or {PLATFORM_NAME}")
    return to_key(text)


# The Stripe objects an event is about: its data.object, and the objects data.object names by id.
OBJECT_FIELDS = ("id", "customer", "charge", "payment_intent", "invoice", "subscription")
_ABOUT_OBJECT = " OR ".join(f"payload -> 'data' -> 'object' ->> '{f}' = %(object)s" for f in OBJECT_FIELDS)

LIST_EVENTS = (
    f"SELECT {_COLUMNS} FROM events"
    " WHERE (%(status)s::text IS NULL OR status = %(status)s)"
    "   AND (%(type)s::text IS NULL OR type = %(type)s)"
    "   AND (%(since)s::timestamptz IS NULL OR received_at >= %(since)s)"
    "   AND (%(account)s::text IS NULL OR account = %(account)s)"
    f"  AND (%(object)s::text IS NULL OR {_ABOUT_OBJECT})"
    " ORDER BY received_at DESC, id DESC LIMIT %(limit)s"
)


def list_events(conn, *, status: str | None = None, type_: str | None = None, since: datetime | None = None,
                account: str | None = None, object_id: str | None = None, limit: int = 100) -> list[LedgerEvent]:
    """The ledger, newest first. `account` is the stored key ('' for the platform); `object_id` keeps the
    events about that Stripe object (see OBJECT_FIELDS)."""
    cur = conn.cursor(row_factory=class_row(LedgerEvent))
    return cur.execute(LIST_EVENTS, {"status": status, "type": type_, "since": since, "account": account,
                                     "object": object_id, "limit": limit}).fetchall()


def changes_of(conn, event_id: str) -> list[dict]:
    """The records an event changed, from the activity it wrote."""
    rows = conn.execute(
        "SELECT record_type, record_id, kind, message, customer_id FROM activity"
        " WHERE stripe_event_id = %(id)s ORDER BY id",
        {"id": event_id},
    ).fetchall()
    return [
        {"record_type": r[0], "record_id": r[1], "kind": r[2], "message": r[3], "customer_id": r[4]}
        for r in rows
    ]


CLAIM = f"SELECT {_COLUMNS}, payload FROM events WHERE id = %(id)s FOR UPDATE SKIP LOCKED"


def claim(conn, event_id: str) -> LedgerEvent | None:
    """Lock the event for this transaction; None when missing or another worker holds it."""
    cur = conn.cursor(row_factory=class_row(LedgerEvent))
    return cur.execute(CLAIM, {"id": event_id}).fetchone()


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
_RANK_SQL = "CASE type " + " ".join(f"WHEN '{t}' THEN {r}" for t, r in _RANK.items()) + f" ELSE {OTHER_RANK} END"


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
_OBJ = "payload -> 'data' -> 'object'"
LOCK_SPACE = 0x5453  # the advisory locks' first key: the customers' groups, apart from other advisory locks
CLAIM_SCAN = 4  # a claim looks this many times its limit ahead, past what other workers hold
_NAMED_CUSTOMER = (f"COALESCE({_OBJ} -> 'customer' ->> 'id', {_OBJ} ->> 'customer',"
                   f" CASE WHEN {_OBJ} ->> 'object' = 'customer' THEN {_OBJ} ->> 'id' END)")
_KEY_PARTS = f"id, account, {_NAMED_CUSTOMER} AS customer, {_OBJ} ->> 'id' AS object_id, {_OBJ} ->> 'charge' AS charge"
_CHARGES_CUSTOMER = ("(SELECT p.stripe_customer_id FROM payments p WHERE p.account = w.account"
                     " AND p.stripe_charge_id = w.charge LIMIT 1)")


def _customer_key(charge_event_customer: str = "") -> str:
    """The group of an event row `w` (its _KEY_PARTS); `charge_event_customer`: the customer of a charge
    event among the candidates, when there is one."""
    return f"COALESCE(w.customer, {_CHARGES_CUSTOMER}, {charge_event_customer}w.charge, w.object_id, w.id)"


def _group_lock(function: str, key: str) -> str:
    return f"{function}({LOCK_SPACE}, hashtext(w.account || ' ' || {key}))"


# The window: candidates in Stripe's order. Each one's customer is then locked (try: never waiting) in
# that order until `limit` are taken, so a claim locks no customer beyond its last event (a materialized
# CTE is read in the order it was written). The row locks then guard the events against per-event jobs;
# the status is checked again on the latest row (a batch that committed since the window was read).
CLAIM_NEXT = (
    "WITH window_ AS MATERIALIZED ("
    f"   SELECT {_KEY_PARTS}, created, {_RANK_SQL} AS rank, received_at"
    "    FROM events WHERE status = 'received' AND id <> %(exclude)s"
    f"   ORDER BY created, {_RANK_SQL}, received_at LIMIT %(scan)s"
    "), candidates AS MATERIALIZED ("
    f"   SELECT w.id, w.account, {_customer_key('c.customer, ')} AS key FROM window_ w"
    "    LEFT JOIN (SELECT DISTINCT ON (account, object_id) account, object_id, customer FROM window_"
    "               WHERE customer IS NOT NULL ORDER BY account, object_id, created) c"
    "      ON c.account = w.account AND c.object_id = w.charge"
    "    ORDER BY w.created, w.rank, w.received_at"
    "), taken AS MATERIALIZED ("
    f"   SELECT id FROM candidates w WHERE {_group_lock('pg_try_advisory_xact_lock', 'w.key')} LIMIT %(limit)s"
    ")"
    f" SELECT {_COLUMNS}, payload FROM events WHERE id IN (SELECT id FROM taken) AND status = 'received'"
    f" ORDER BY created, {_RANK_SQL}, received_at FOR UPDATE SKIP LOCKED"
)


def claim_next(conn, *, limit: int, exclude: str = "") -> list[LedgerEvent]:
    """Lock up to `limit` events that no worker has applied yet, oldest first in Stripe's order,
    skipping those of customers another transaction holds (and locking these customers until this
    transaction ends)."""
    if limit <= 0:
        return []
    cur = conn.cursor(row_factory=class_row(LedgerEvent))
    return cur.execute(CLAIM_NEXT, {"exclude": exclude, "limit": limit, "scan": limit * CLAIM_SCAN}).fetchall()


LOCK_CUSTOMER_OF = (f"SELECT {_group_lock('pg_advisory_xact_lock', _customer_key())}"
                    f" FROM (SELECT {_KEY_PARTS} FROM events WHERE id = %(id)s) w")


def lock_customer_of(conn, event_id: str) -> None:
    """Hold this event's customer for the transaction, as a claim does (waiting while a batch holds it)."""
    conn.execute(LOCK_CUSTOMER_OF, {"id": event_id}).fetchall()


def exists(conn, event_id: str) -> bool:
    return conn.execute("SELECT 1 FROM events WHERE id = %(id)s", {"id": event_id}).fetchone() is not None


# An outcome that sets the event's status: an automatic attempt or a wake-up (which move the retry
# schedule), or a replay that applied the event (which ends the schedule).
RECORD_OUTCOME = (
    "UPDATE events SET status = %(status)s, last_error = %(error)s, waiting_on = %(waiting_on)s,"
    " attempts = attempts + 1, scheduled_attempts = scheduled_attempts + %(scheduled)s,"
    " processed_at = CASE WHEN %(status)s IN ('processed', 'ignored') THEN now() ELSE processed_at END,"
    " next_attempt_at = CASE WHEN %(retry)s::int IS NULL THEN NULL"
    "                   ELSE now() + make_interval(secs => %(retry)s::int) END"
    " WHERE id = %(id)s"
)
# A replay that did not apply the event: the event keeps its status and its schedule; only the error is news.
RECORD_FAILED_REPLAY = (
    "UPDATE events SET last_error = %(error)s, waiting_on = COALESCE(%(waiting_on)s, waiting_on),"
    " attempts = attempts + 1 WHERE id = %(id)s"
)
LOG_ATTEMPT = ("INSERT INTO event_attempts (event_id, kind, status, error)"
               " VALUES (%(id)s, %(kind)s, %(status)s, %(error)s)")


class Attempts:
    """Outcomes of a batch's attempts, logged and written together (a few round trips per batch instead
    of two per event), in the caller's transaction. Write them before reading the events' statuses.

    An automatic attempt or a wake-up sets the status and moves the retry schedule (`retry_in_seconds`:
    when to try next; None: no further automatic attempt). A replay that applies the event sets its
    status and ends the schedule; a replay that does not leaves status and schedule as they were."""

    def __init__(self):
        self.outcomes: list[dict] = []
        self.failed_replays: list[dict] = []
        self.logged: list[dict] = []

    def add(self, event_id: str, kind: AttemptKind, status: EventStatus, *, error: str | None = None,
            waiting_on: str | None = None, retry_in_seconds: int | None = None) -> None:
        params = {"id": event_id, "kind": kind.value, "status": status.value, "error": error,
                  "waiting_on": waiting_on, "retry": retry_in_seconds,
                  "scheduled": 0 if kind is AttemptKind.REPLAY else 1}
        applied = status in (EventStatus.PROCESSED, EventStatus.IGNORED)
        if kind is AttemptKind.REPLAY and not applied:
            self.failed_replays.append(params)
        else:
            self.outcomes.append(params | ({"retry": None} if applied else {}))
        self.logged.append(params)

    def write(self, conn) -> None:
        with conn.cursor() as cur:
            for sql, rows in ((RECORD_OUTCOME, self.outcomes), (RECORD_FAILED_REPLAY, self.failed_replays),
                              (LOG_ATTEMPT, self.logged)):
                if rows:
                    cur.executemany(sql, rows)
        self.outcomes, self.failed_replays, self.logged = [], [], []


def attempts_log(conn, event_id: str) -> list[dict]:
    """Every attempt at an event, oldest first: {"at", "kind", "status", "error"}."""
    rows = conn.execute(
        "SELECT at, kind, status, error FROM event_attempts WHERE event_id = %(id)s ORDER BY id", {"id": event_id},
    ).fetchall()
    return [{"at": r[0], "kind": r[1], "status": r[2], "error": r[3]} for r in rows]


def waiting_on(conn, account: str, object_ids: list[str]) -> list[str]:
    """Ids of events waiting for any of these Stripe objects."""
    if not object_ids:
        return []
    rows = conn.execute(
        "SELECT id FROM events WHERE account = %(account)s AND waiting_on = ANY(%(ids)s)"
        " AND status IN ('waiting', 'failed')",
        {"account": account, "ids": object_ids},
    ).fetchall()
    return [r[0] for r in rows]


def stranded(conn, *, older_than_seconds: int = 60, limit: int = 1000) -> list[tuple[str, str, int]]:
    """(id, status, scheduled_attempts) of events that a job should take now and that no worker holds:
    received longer ago than `older_than_seconds` (stored while Redis was down, or their worker
    was killed), or waiting/failed with their retry time come. A worker applying an event holds
    its row lock, and a killed worker's lock goes with its connection: SKIP LOCKED tells them apart."""
    rows = conn.execute(
        "SELECT id, status, scheduled_attempts FROM events WHERE"
        " (status = 'received' AND received_at < now() - make_interval(secs => %(age)s))"
        " OR (status IN ('waiting', 'failed') AND next_attempt_at <= now())"
        " ORDER BY received_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED",
        {"age": older_than_seconds, "limit": limit},
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def known(conn, event_ids: list[str]) -> list[str]:
    """The ids among these that the ledger holds, in the order given."""
    rows = conn.execute("SELECT id FROM events WHERE id = ANY(%(ids)s)", {"ids": list(event_ids)}).fetchall()
    held = {r[0] for r in rows}
    return [i for i in dict.fromkeys(event_ids) if i in held]


def ids_matching(conn, *, status: str | None = None, since: datetime | None = None) -> list[str]:
    rows = conn.execute(
        "SELECT id FROM events WHERE (%(status)s::text IS NULL OR status = %(status)s)"
        " AND (%(since)s::timestamptz IS NULL OR received_at >= %(since)s) ORDER BY created, received_at",
        {"status": status, "since": since},
    ).fetchall()
    return [r[0] for r in rows]


def count_by_status(conn) -> dict[str, int]:
    """How many events the ledger holds in each status (reads every event)."""
    return dict(conn.execute("SELECT status, count(*) FROM events GROUP BY status").fetchall())


# The statuses a live ledger keeps few events in, each counted from its partial index (events_claim,
# events_due). No code sets `processing` any more.
COUNT_UNSETTLED = (
    "SELECT 'received', count(*) FROM events WHERE status = 'received'"
    " UNION ALL SELECT status, count(*) FROM events WHERE status IN ('waiting', 'failed') GROUP BY status"
)
# PostgreSQL's own figures: the live rows it counts as they are inserted and deleted, and each status's share
# of the rows the last ANALYZE sampled.
EVENTS_STATISTICS = (
    "SELECT s.n_live_tup, st.most_common_vals::text::text[], st.most_common_freqs FROM pg_stat_user_tables s"
    " LEFT JOIN pg_stats st ON st.schemaname = s.schemaname AND st.tablename = s.relname AND st.attname = 'status'"
    " WHERE s.relid = 'events'::regclass"
)
SETTLED = ("processed", "ignored")


def status_counts(conn, *, exact_below: int = 100_000) -> dict[str, int]:
    """Events per status for the gauges, without reading the whole ledger (count_by_status took 2 s at 10
    million events): the unsettled statuses exactly; processed and ignored exactly while the ledger holds
    fewer than `exact_below` events, then estimated: the live rows less the unsettled ones, shared out
    as the last ANALYZE (autovacuum's) found them."""
    live, values, shares = conn.execute(EVENTS_STATISTICS).fetchone() or (0, None, None)
    if live < exact_below or not values:
        return count_by_status(conn)
    counts = dict(conn.execute(COUNT_UNSETTLED).fetchall())
    share = {v: f for v, f in zip(values, shares) if v in SETTLED}
    settled = max(live - sum(counts.values()), 0)
    for status, fraction in share.items():
        counts[status] = round(settled * fraction / sum(share.values()))
    return counts


# One min() per status, each read from that status's small partial index (events_claim, events_due). As one
# min() over both, or without the OFFSET 0 fences, PostgreSQL walked the received_at index from the oldest
# event until it met one: the whole ledger (4 s at 10 million events), since unapplied events are the newest.
OLDEST_UNAPPLIED = (
    "SELECT COALESCE(EXTRACT(EPOCH FROM now() - LEAST("
    "(SELECT min(received_at) FROM (SELECT received_at FROM events WHERE status = 'received' OFFSET 0) r),"
    " (SELECT min(received_at) FROM (SELECT received_at FROM events WHERE status = 'waiting' OFFSET 0) w))), 0)"
)


def oldest_unapplied_age(conn) -> float:
    """Seconds since the oldest event that is received or waiting arrived (0 when there is none)."""
    return float(conn.execute(OLDEST_UNAPPLIED).fetchone()[0])


def replays_done(conn, event_ids: list[str]) -> dict[str, int]:
    """How many replays each of these events has had (from the attempts log); missing ids count 0."""
    rows = conn.execute(
        "SELECT event_id, count(*) FROM event_attempts WHERE event_id = ANY(%(ids)s) AND kind = 'replay'"
        " GROUP BY event_id", {"ids": list(event_ids)},
    ).fetchall()
    return {event_id: 0 for event_id in event_ids} | dict(rows)
