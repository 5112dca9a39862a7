"""The ledger's hot queries on a big `events` table: fill it to N events, then time each query.

    python bench/ledger_scale.py [--events 10000000] [--runs 200] [--no-fill] [--only-fill] [--partitioned]
    BENCH_LEDGER_DATABASE_URL=postgresql://…/other python bench/ledger_scale.py --events 0

Fills a database of its own (default `teachery_sync_bench_10m`, created and migrated when missing, never
emptied) up to --events events, in chunks of one INSERT … SELECT from generate_series each, resumable
(the chunks done are counted in `bench_fill.progress`, in the chunk's own transaction). The events are
what a two-year-old ledger holds:
- ids shaped like Stripe's (`evt_1` + a time-ordered part + the account's tail + random: 29 characters,
  so new ids sort after old ones, as Stripe's do), 300 connected accounts (skewed: a few big, most small)
  and the platform's own (30%);
- `created` spread evenly over two years, in order, `received_at` 0–3 s after it;
- about 40 event types, weighted like a course business's traffic (charges, payment intents, invoices,
  subscriptions; rare disputes and deletions); the types we do not handle `ignored`, the rest `processed`;
- a 1.1 KB payload each: a real-looking charge event (card details, billing address, receipt URL…)
  carrying the event's own ids; stored inline (under TOAST's 2 KB threshold), so the heap is what a
  real ledger's is for its first kilobyte;
- after each fill, the live part: the newest 300 events `received`, about 330 of the last 100,000
  `waiting` (two thirds waiting on an object; a third already due), and one in 40,000 over the whole
  history `failed` for good (half of them waiting on an object). ANALYZE (VACUUM ANALYZE after a fill).

Then times the ledger's hot queries with the project's own functions (domain.ledger), each --runs times
on one connection (as a pooled connection runs them: psycopg prepares a statement after five runs), and
prints p50/p99 in ms and the EXPLAIN (ANALYZE, BUFFERS) lines that say how each was run: the drain's
claim and the sweep (each in a transaction rolled back), the list's newest page (as GET
/admin/api/events builds it) without and with filters, one event by id, record_event of a new event (in a
transaction rolled back: the commit's fsync does not depend on the table's size), the wake-up query,
and the /metrics gauges. With --events 0 on an empty database it gives the figures at ~0 rows.

--partitioned copies the filled ledger, once, into the layout planned for 100 million events (schema
`parts`: monthly partitions by received_at, the ids in `event_ids`) and times the same functions there
(search_path=parts,public; record_event with the planned statement, and one event found through event_ids).
bench/ingest.py always empties its database, so it cannot run against this one: record_event's figures
here, at 10 million and at ~0, stand for ingest.

Heavy: run it under `flock /tmp/bench.lock`.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import statistics
import time
from datetime import UTC, datetime, timedelta

import common  # noqa: F401  (puts the project on sys.path)
import psycopg
import psycopg.sql

from domain import ledger
from domain.migrate import migrate

DATABASE_URL = os.environ.get("BENCH_LEDGER_DATABASE_URL", "postgresql://root@127.0.0.1:5432/teachery_sync_bench_10m")
CHUNK = 250_000
SPAN_SECONDS = 2 * 365 * 86400
ACCOUNTS = 300
B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # in byte order: sorts as it counts

# (type, weight in 1,000): a course business's traffic. Handled types end `processed`, others `ignored`.
TYPES = (
    ("charge.succeeded", 120), ("payment_intent.succeeded", 120), ("payment_intent.created", 114),
    ("checkout.session.completed", 60), ("invoice.paid", 60), ("invoice.payment_succeeded", 60),
    ("invoice.created", 55), ("invoice.finalized", 55), ("invoice.updated", 30), ("customer.updated", 40),
    ("customer.created", 40), ("customer.subscription.updated", 40), ("customer.subscription.created", 20),
    ("payment_method.attached", 30), ("charge.updated", 25), ("balance.available", 20),
    ("invoice_payment.paid", 15), ("payment_intent.payment_failed", 12), ("charge.failed", 12),
    ("customer.subscription.deleted", 8), ("charge.refunded", 8), ("refund.created", 8), ("refund.updated", 6),
    ("invoice.payment_failed", 6), ("customer.subscription.trial_will_end", 5), ("charge.pending", 4),
    ("payment_intent.processing", 4), ("checkout.session.expired", 4), ("payout.paid", 4),
    ("customer.subscription.paused", 2), ("customer.subscription.resumed", 2), ("charge.refund.updated", 2),
    ("checkout.session.async_payment_succeeded", 2), ("refund.failed", 1), ("customer.deleted", 1),
    ("charge.dispute.created", 1), ("charge.dispute.closed", 1), ("charge.expired", 1),
    ("invoice.upcoming", 1), ("product.updated", 1),
)
RARE_TYPE = "charge.dispute.created"  # 0.1% of the events: the list's worst type filter

# The payload: a charge event of about 0.9 KB. %1$s id, %2$s created, %3$s type, %4$s account fragment,
# %5$s object id part, %6$s customer, %7$s customer number.
PAYLOAD = (
    '{"id": "%1$s", "object": "event", "api_version": "2024-06-20", "created": %2$s, %4$s"livemode": true,'
    ' "pending_webhooks": 1, "type": "%3$s",'
    ' "data": {"object": {"id": "ch_3%5$s", "object": "charge", "amount": 4900, "amount_captured": 4900,'
    ' "amount_refunded": 0,'
    ' "billing_details": {"email": "customer%7$s@example.com", "name": "Customer %7$s"},'
    ' "captured": true, "created": %2$s, "currency": "usd", "customer": "%6$s",'
    ' "description": "Course purchase",'
    ' "invoice": null, "livemode": true, "metadata": {"course_id": "course_%7$s"},'
    ' "paid": true,'
    ' "payment_intent": "pi_3%5$s", "payment_method": "pm_1%5$s", "payment_method_details": {"card":'
    ' {"brand": "visa", "exp_month": 8, "exp_year": 2029,'
    ' "last4": "4242"}, "type": "card"},'
    ' "receipt_url": "https://pay.stripe.com/receipts/payment/CAcaFwoVYWNjdF8x%5$s", "refunded": false,'
    ' "status": "succeeded"}}}'
)

SETUP = """
CREATE SCHEMA IF NOT EXISTS bench_fill;
CREATE TABLE IF NOT EXISTS bench_fill.progress (
    filled bigint NOT NULL, t0 bigint NOT NULL, step double precision NOT NULL);
CREATE OR REPLACE FUNCTION bench_fill.b62(n bigint, width int) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE s text := ''; BEGIN
  FOR i IN 1..width LOOP s := substr('{b62}', (n % 62)::int + 1, 1) || s; n := n / 62; END LOOP;
  RETURN s;
END $$;
""".replace("{b62}", B62)

# Row k (1-based) of the fill. h: a hash of k that picks the account, the type, the customer.
FILL = """
WITH rows AS (
  SELECT k, ('x' || substr(md5(k::text), 1, 15))::bit(60)::bigint AS h,
         %(t0)s + floor(k * %(step)s)::bigint AS created
    FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS k
), shaped AS (
  SELECT k, h, created,
         CASE WHEN h %% 10 < 3 THEN ''
              ELSE (%(accounts)s::text[])[1 + floor(%(n_accounts)s * power((h / 10 %% 10007) / 10007.0, 3))::int]
         END AS account,
         (%(types)s::text[])[1 + (h / 100000 %% 1000)::int] AS type,
         (h / 100000000 %% 200000) AS customer_n,
         bench_fill.b62(k, 7) AS seq
    FROM rows
), ids AS (
  SELECT *, 'evt_1' || seq || right(CASE account WHEN '' THEN 'LkdIwHu7ix' ELSE account END, 10)
            || left(md5('r' || k), 7) AS id,
         seq || right(CASE account WHEN '' THEN 'LkdIwHu7ix' ELSE account END, 10)
             || left(md5('o' || k), 7) AS object_part
    FROM shaped
)
INSERT INTO events (id, account, type, api_version, created, payload, status, attempts, scheduled_attempts,
                    last_error, waiting_on, source, received_at, processed_at)
SELECT id, account, type, '2024-06-20', created,
       format(%(payload)s, id, created, type,
              CASE account WHEN '' THEN '' ELSE '"account": "' || account || '", ' END,
              object_part, 'cus_' || left(md5(account || customer_n), 14), customer_n)::jsonb,
       CASE WHEN h %% 40000 = 7 THEN 'failed' WHEN type = ANY(%(handled)s::text[]) THEN 'processed' ELSE 'ignored' END,
       CASE WHEN h %% 40000 = 7 THEN 9 ELSE 1 END, CASE WHEN h %% 40000 = 7 THEN 9 ELSE 1 END,
       CASE WHEN h %% 40000 = 7 THEN 'gave up after 9 attempts: Stripe API: connection error' END,
       CASE WHEN h %% 40000 = 7 AND h / 7 %% 2 = 0 THEN 'cus_' || left(md5(account || customer_n), 14) END,
       'webhook', to_timestamp(created + (h %% 3)), to_timestamp(created + (h %% 3) + 1)
  FROM ids
ON CONFLICT (id) DO NOTHING
"""

# The live part of the ledger, set again after every fill (idempotent): the newest 300 events not yet
# drained, a few hundred of the last 100,000 waiting for their next attempt.
SETTLE = [
    "UPDATE events SET status = CASE WHEN type = ANY(%(handled)s::text[]) THEN 'processed' ELSE 'ignored' END,"
    " attempts = 1, scheduled_attempts = 1, last_error = NULL, waiting_on = NULL, next_attempt_at = NULL,"
    " processed_at = received_at + interval '1 second' WHERE status IN ('received', 'waiting')",
    "UPDATE events SET status = 'received', attempts = 0, scheduled_attempts = 0, processed_at = NULL"
    " WHERE id IN (SELECT id FROM events ORDER BY received_at DESC, id DESC LIMIT 300)",
    "UPDATE events SET status = 'waiting', attempts = 1 + created %% 5, scheduled_attempts = 1 + created %% 5,"
    " last_error = 'Stripe API: connection error', processed_at = NULL,"
    " waiting_on = CASE WHEN created %% 3 > 0 THEN payload -> 'data' -> 'object' ->> 'customer' END,"
    " next_attempt_at = now() + make_interval(secs => (created %% 7200) - 2400)"
    " WHERE id IN (SELECT id FROM events ORDER BY received_at DESC, id DESC OFFSET 300 LIMIT 100000)"
    " AND hashtext(id) %% 300 = 0",
]


def weighted_types() -> list[str]:
    slots = [t for t, weight in TYPES for _ in range(weight)]
    assert len(slots) == 1000, len(slots)
    return slots


def account_ids() -> list[str]:
    rnd = random.Random(8)
    return ["acct_1" + "".join(rnd.choice(B62) for _ in range(15)) for _ in range(ACCOUNTS)]


def handled_types() -> list[str]:
    from workers.event_table import EVENT_HANDLERS
    return sorted(EVENT_HANDLERS)


def ensure_database(dsn: str) -> None:
    admin, name = dsn.rsplit("/", 1)
    with psycopg.connect(admin + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    migrate(dsn)


def fill(dsn: str, target: int) -> None:
    """Top the ledger up to `target` events (resumable: chunks already done are skipped)."""
    params = {"accounts": account_ids(), "n_accounts": ACCOUNTS, "types": weighted_types(),
              "handled": handled_types(), "payload": PAYLOAD}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SETUP)
        row = conn.execute("SELECT filled, t0, step FROM bench_fill.progress").fetchone()
        if row is None:
            # Two years up to now; a later, larger --events keeps the same step (the history grows forward).
            step = SPAN_SECONDS / max(target, 1)
            row = (0, int(time.time()) - SPAN_SECONDS, step)
            conn.execute("INSERT INTO bench_fill.progress VALUES (%s, %s, %s)", row)
        filled, t0, step = row
        if filled >= target:
            print(f"fill: {filled:,} events already there (target {target:,})")
        else:
            print(f"fill: {filled:,} → {target:,} events, chunks of {CHUNK:,}", flush=True)
            started = time.monotonic()
            while filled < target:
                hi = min(filled + CHUNK, target)
                t = time.monotonic()
                with conn.transaction():
                    conn.execute(FILL, params | {"t0": t0, "step": step, "lo": filled + 1, "hi": hi})
                    conn.execute("UPDATE bench_fill.progress SET filled = %s", (hi,))
                filled = hi
                done = time.monotonic() - started
                print(f"  {filled:>12,}  chunk {time.monotonic() - t:5.1f} s  total {done:7.1f} s", flush=True)
            print(f"fill time: {time.monotonic() - started:.0f} s")
            t = time.monotonic()
            conn.execute("VACUUM (ANALYZE) events")
            print(f"VACUUM (ANALYZE) events: {time.monotonic() - t:.0f} s")
        with conn.transaction():
            for sql in SETTLE:
                conn.execute(sql, {"handled": params["handled"]})
        conn.execute("ANALYZE events")
        print("statuses:", dict(sorted(ledger.count_by_status(conn).items())))
        sizes(conn)


# The layout planned for 100 million events (README, "The ledger at 10 and 100 million events"), built
# beside the real table in a schema of its own from the same rows, so the same functions can be timed on
# it (search_path=parts,public). Monthly range partitions by received_at; a partitioned table's unique key
# must hold the partition key, so the once-per-id guarantee moves to `event_ids`, keyed by id alone.
PARTITIONED = """
CREATE SCHEMA parts;
CREATE TABLE parts.events (LIKE public.events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (received_at);
CREATE TABLE parts.event_ids (id text PRIMARY KEY, received_at timestamptz NOT NULL);
"""
PARTITION = ("CREATE TABLE parts.events_{name} PARTITION OF parts.events"
             " FOR VALUES FROM ('{start}') TO ('{end}')")
PARTITIONED_INDEXES = [
    "ALTER TABLE parts.events ADD PRIMARY KEY (id, received_at)",
    "CREATE INDEX events_received ON parts.events (received_at, id)",
    "CREATE INDEX events_type ON parts.events (type, received_at)",
    "CREATE INDEX events_account ON parts.events (account, received_at)",
    "CREATE INDEX events_claim ON parts.events (created) WHERE status = 'received'",
    "CREATE INDEX events_due ON parts.events (next_attempt_at) WHERE status IN ('waiting', 'failed')",
    "CREATE INDEX events_waiting_on ON parts.events (account, waiting_on) WHERE waiting_on IS NOT NULL",
]
# The receiver's one statement on that layout: the id is claimed in event_ids (ON CONFLICT: a redelivery
# inserts nothing, wherever its first copy's month is), and the event row only when the id was new.
PARTITIONED_RECORD_EVENT = """
WITH acct AS (
    INSERT INTO accounts (id) VALUES (%(account)s) ON CONFLICT DO NOTHING
), new AS (
    INSERT INTO event_ids (id, received_at) VALUES (%(id)s, now()) ON CONFLICT (id) DO NOTHING
    RETURNING id, received_at
)
INSERT INTO events (id, account, type, api_version, created, payload, source, received_at)
SELECT id, %(account)s, %(type)s, %(api_version)s, %(created)s, %(payload)s::jsonb, %(source)s, received_at FROM new
RETURNING id
"""
# One event on that layout: its month from event_ids, so only that partition is searched.
PARTITIONED_GET_EVENT = (
    "SELECT id, account, type, api_version, created, status, attempts, last_error, waiting_on, received_at,"
    " processed_at, next_attempt_at, scheduled_attempts, source, payload FROM events"
    " WHERE id = %(id)s AND received_at = (SELECT received_at FROM event_ids WHERE id = %(id)s)"
)


def build_partitioned(dsn: str) -> None:
    """Copy the filled ledger into the partitioned layout (schema `parts`), once."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = 'parts'").fetchone():
            print("partitioned copy: already built (DROP SCHEMA parts CASCADE to rebuild)")
            return
        started = time.monotonic()
        lo, hi = conn.execute("SELECT date_trunc('month', min(received_at)), max(received_at) FROM events").fetchone()
        conn.execute(PARTITIONED)
        month = lo
        while month <= hi + timedelta(days=62):
            end = (month + timedelta(days=32)).replace(day=1)
            conn.execute(PARTITION.format(name=f"{month:%Y_%m}", start=month.isoformat(), end=end.isoformat()))
            month = end
        conn.execute("INSERT INTO parts.events SELECT * FROM public.events")
        conn.execute("INSERT INTO parts.event_ids SELECT id, received_at FROM public.events")
        for sql in PARTITIONED_INDEXES:
            conn.execute(sql)
        conn.execute("VACUUM (ANALYZE) parts.events")
        conn.execute("VACUUM (ANALYZE) parts.event_ids")
        print(f"partitioned copy: built in {time.monotonic() - started:.0f} s")
        mib = 1024 * 1024
        for name in ("parts.events", "parts.event_ids"):
            size = conn.execute("SELECT COALESCE(sum(pg_total_relation_size(relid)), pg_total_relation_size(%s))"
                                " FROM pg_partition_tree(%s)", (name, name)).fetchone()[0]
            print(f"  {name:<44} {size / mib:>10,.0f} MiB (all partitions, with indexes)")

def sizes(conn) -> None:
    rows = conn.execute(
        "SELECT c.relname, pg_total_relation_size(c.oid), pg_relation_size(c.oid) FROM pg_class c"
        " WHERE c.oid = 'events'::regclass"
        " OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = 'events'::regclass)"
        " ORDER BY c.oid <> 'events'::regclass, c.relname").fetchall()
    mib = 1024 * 1024
    for name, total, own in rows:
        table = name == "events"
        label = "table events (with TOAST and indexes)" if table else f"index {name}"
        print(f"  {label:<44} {(total if table else own) / mib:>10,.0f} MiB"
              + (f"   (heap {own / mib:,.0f} MiB)" if table else ""))


class Recorder:
    """A connection that remembers the statements a function ran (for EXPLAIN)."""

    def __init__(self, conn):
        self.conn, self.seen = conn, []

    def execute(self, query, params=None, **kw):
        self.seen.append((query, params))
        return self.conn.execute(query, params, **kw)

    def cursor(self, *args, **kw):
        recorder, cur = self, self.conn.cursor(*args, **kw)

        class Cursor:
            def execute(self, query, params=None, **kwargs):
                recorder.seen.append((query, params))
                cur.execute(query, params, **kwargs)
                return self

            def __getattr__(self, name):
                return getattr(cur, name)
        return Cursor()

    def __getattr__(self, name):
        return getattr(self.conn, name)


def new_event(n: int, account: str) -> tuple[dict, bytes]:
    # Newer than anything filled: Stripe's ids sort by time, so a new id goes to the primary key's right edge.
    tail = hashlib.md5(f"new{n}{time.time_ns()}".encode()).hexdigest()
    event_id = "evt_1zzzz" + tail[:3] + (account or "acct_LkdIwHu7ix")[-10:] + tail[3:10]
    created = int(time.time())
    body = PAYLOAD.replace("%1$s", event_id).replace("%2$s", str(created)).replace("%3$s", "charge.succeeded")
    body = body.replace("%4$s", f'"account": "{account}", ' if account else "").replace("%5$s", tail[:20])
    body = body.replace("%6$s", "cus_" + tail[:14]).replace("%7$s", str(n))
    return json.loads(body), body.encode()


def cases(conn, runs: int, partitioned: bool) -> list[tuple[str, object]]:
    """(name, function of the run number that calls the project's function on `c`)."""
    rnd = random.Random(5)
    sample = [r[0] for r in conn.execute("SELECT id FROM events TABLESAMPLE SYSTEM (0.02) LIMIT 2000")]
    if not sample:
        sample = ["evt_missing"]
    rnd.shuffle(sample)
    big, small = account_ids()[0], account_ids()[-1]  # the fill's skew: the first has 15%, the last 0.1%
    waited = conn.execute("SELECT account, waiting_on FROM events WHERE waiting_on IS NOT NULL"
                          " AND status IN ('waiting', 'failed') LIMIT 50").fetchall() or [("", "cus_none")]
    conn.rollback()

    def rolled_back(fn):
        def run(c, i):
            with c.transaction(force_rollback=True):
                return fn(c, i)
        return run

    def list_page(**filters):
        return lambda c, i: ledger.list_events(c, limit=100, **filters)

    def wake(c, i):
        account, object_id = waited[i % len(waited)]
        return ledger.waiting_on(c, account, [object_id, f"ch_3none{i}", f"pi_3none{i}"])

    def record(c, i):
        account = "" if i % 3 == 0 else big
        event, raw = new_event(i, account)
        return ledger.record_event(c, event, raw=raw)

    def get_by_month(c, i):
        return c.execute(PARTITIONED_GET_EVENT, {"id": sample[i % len(sample)]}).fetchone()

    planned = [("get_event via event_ids  [planned]", get_by_month)] if partitioned else []
    return [
        ("claim_next(limit=200)  [drain's claim]", rolled_back(lambda c, i: ledger.claim_next(c, limit=200))),
        ("claim_next(limit=1)", rolled_back(lambda c, i: ledger.claim_next(c, limit=1))),
        ("stranded()  [sweep]", rolled_back(lambda c, i: ledger.stranded(c, older_than_seconds=60))),
        ("list_events()  [newest page, no filter]", list_page()),
        ("list_events(type=charge.succeeded)", list_page(type_="charge.succeeded")),
        (f"list_events(type={RARE_TYPE})  [0.1%]", list_page(type_=RARE_TYPE)),
        ("list_events(status=processed)", list_page(status="processed")),
        ("list_events(status=failed)", list_page(status="failed")),
        ("list_events(status=received)", list_page(status="received")),
        ("list_events(account=biggest)", list_page(account=big)),
        ("list_events(account=smallest)", list_page(account=small)),
        ("get_event(id, with_payload)  [one event]", lambda c, i: ledger.get_event(c, sample[i % len(sample)],
                                                                                 with_payload=True)),
        *planned,
        ("record_event(new)  [rolled back]", rolled_back(record)),
        ("waiting_on(account, ids)  [wake-up]", wake),
        ("count_by_status()  [reads every event]", lambda c, i: ledger.count_by_status(c)),
        ("status_counts()  [/metrics]", lambda c, i: ledger.status_counts(c)),
        ("oldest_unapplied_age()  [/metrics]", lambda c, i: ledger.oldest_unapplied_age(c)),
    ]


NODE = re.compile(r"^(?:->\s*)?([A-Z][^(]*?)\s+\(cost=[^)]*\)"
                  r"(?: \(actual time=[\d.]+\.\.[\d.]+ rows=(\d+) loops=\d+\)| \(never executed\))?")


def summary(plan: list[str]) -> list[str]:
    """A plan in two lines: its nodes in order (a partition's node once, with how many partitions ran it,
    and the rows it gave), then the top node's buffers and the execution time."""
    nodes: dict[str, list[int]] = {}
    buffers = timing = None
    for line in plan:
        text = line.strip()
        match = NODE.match(text)
        if match:
            name = re.sub(r"\bevents_\d{4}_\d{2}", "events_<month>", match.group(1))
            name = re.sub(r"( on \S+) \S+$", r"\1", name)  # a table's alias
            seen = nodes.setdefault(name, [0, 0])
            seen[0] += 1
            seen[1] += int(match.group(2) or 0)
        elif text.startswith("Buffers:") and buffers is None:
            buffers = text
        elif text.startswith("Execution Time"):
            timing = text
    steps = [(f"{n}× " if n > 1 else "") + f"{name} (rows {rows:,})" for name, (n, rows) in nodes.items()]
    return [" → ".join(steps), f"{buffers or 'Buffers: none'}; {timing}"]


def explain(conn, fn) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of each statement the function runs, in a transaction rolled back."""
    recorder = Recorder(conn)
    with conn.transaction(force_rollback=True):
        fn(recorder, 10**6)
    lines = []
    for query, params in recorder.seen:
        with conn.transaction(force_rollback=True):
            plan = [r[0] for r in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + query, params, prepare=False)]
        lines += summary(plan)
    return lines


def time_queries(dsn: str, runs: int, only: str | None, partitioned: bool = False) -> None:
    if partitioned:  # the same functions, on the partitioned copy; record_event with the planned statement
        ledger.RECORD_EVENT = PARTITIONED_RECORD_EVENT
    with psycopg.connect(dsn, options="-c search_path=parts,public" if partitioned else "") as conn:
        total = conn.execute("SELECT sum(reltuples)::bigint FROM pg_class WHERE relkind = 'r' AND"
                             " (oid = 'events'::regclass OR oid IN (SELECT relid FROM pg_partition_tree('events')))"
                             ).fetchone()[0] or 0
        print(f"\nhot queries on ~{max(total, 0):,} events{' (partitioned copy)' if partitioned else ''},"
              f" {runs} runs each on one connection"
              f" ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")
        print(f"  {'query':<46} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for name, fn in cases(conn, runs, partitioned):
            if only and only not in name:
                continue
            times = []
            budget = time.monotonic() + 60  # a query that is far too slow gets fewer runs
            for i in range(runs):
                t = time.perf_counter()
                fn(conn, i)
                times.append((time.perf_counter() - t) * 1000)
                conn.rollback()
                if time.monotonic() > budget:
                    break
            times.sort()
            p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
            flag = "" if p99 < 10 else "   ← over 10 ms"
            print(f"  {name:<46} {statistics.median(times):8.2f} {p99:8.2f} {times[-1]:8.2f}"
                  f"{'' if len(times) == runs else f'  ({len(times)} runs)'}{flag}", flush=True)
            for line in explain(conn, fn):
                print(f"      {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000, help="fill the ledger up to this many events")
    parser.add_argument("--runs", type=int, default=200, help="runs of each query")
    parser.add_argument("--no-fill", action="store_true", help="time the queries on the database as it is")
    parser.add_argument("--only-fill", action="store_true", help="fill, print the sizes, time nothing")
    parser.add_argument("--only", help="time only the queries whose name contains this")
    parser.add_argument("--partitioned", action="store_true",
                        help="copy the ledger into the planned monthly partitions (schema parts) and time those")
    args = parser.parse_args()
    ensure_database(DATABASE_URL)
    if not args.no_fill:
        fill(DATABASE_URL, args.events)
    else:
        with psycopg.connect(DATABASE_URL) as conn:
            sizes(conn)
    if args.partitioned:
        build_partitioned(DATABASE_URL)
    if not args.only_fill:
        time_queries(DATABASE_URL, args.runs, args.only, partitioned=args.partitioned)


if __name__ == "__main__":
    main()
