"""The console's Events and Health pages on a 1,000,000-event ledger: server time of each page.

    flock /tmp/bench.lock python bench/console_events.py [--events 1000000] [--runs 20] [--no-fill]
    BENCH_CONSOLE_DATABASE_URL=postgresql://…/other python bench/console_events.py

Fills a database of its own (default `teachery_sync_perf_ev`, created and migrated when missing, emptied
first unless --no-fill) with one INSERT … SELECT from generate_series: events over the last 30 days
(`received_at` in order, so the newest minutes hold ~23 events each), 300 connected accounts and the
platform's own (30%), weighted types, `processed` or `ignored` with a `processed_at` a second later, one
in 40,000 `failed`, a few hundred `waiting` and the newest 300 `received`; then VACUUM ANALYZE.

Then renders each page through the Flask app (a signed-in test client: the server's whole work, template
included, without the network), --runs times, and prints p50 and max in ms. Deep pages are reached by
following the "Older" link 20 times first (page 21: ~1,000 events deep), and by a keyset 90% down the
ledger. Prints EXPLAIN (ANALYZE) of the list's query for the slowest case.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import time
from urllib.parse import urlencode

import common  # noqa: F401  (puts the project on sys.path)
import psycopg

from domain.migrate import migrate
from domain.settings import Settings

DATABASE_URL = os.environ.get("BENCH_CONSOLE_DATABASE_URL", "postgresql://root@127.0.0.1:5432/teachery_sync_perf_ev")
REDIS_URL = os.environ.get("BENCH_CONSOLE_REDIS_URL", "redis://127.0.0.1:6379/4")
TOKEN = "bench-admin-token-0123456789abcdef"

ACCOUNTS = """
INSERT INTO accounts (id) SELECT 'acct_1Bench' || lpad(a::text, 6, '0') FROM generate_series(1, 300) a
ON CONFLICT DO NOTHING
"""
FILL = """
INSERT INTO events (id, account, type, api_version, created, payload, status, attempts, scheduled_attempts,
                    last_error, received_at, processed_at, next_attempt_at)
SELECT 'evt_1' || lpad(to_hex(n), 8, '0') || md5(n::text)::char(16),
       acct, typ, '2024-06-20', extract(epoch FROM at)::bigint,
       jsonb_build_object('id', 'evt_' || n, 'object', 'event', 'type', typ,
                          'data', jsonb_build_object('object', jsonb_build_object(
                              'id', 'ch_' || md5(n::text), 'object', 'charge', 'amount', 4900, 'currency', 'usd',
                              'customer', 'cus_' || (n %% 50000), 'description', repeat('x', 200)))),
       st, 1, 1, CASE WHEN st = 'failed' THEN 'gave up after 10 automatic attempts: boom' END,
       at, CASE WHEN st IN ('processed', 'ignored') THEN at + interval '1 second' END,
       CASE WHEN st = 'waiting' THEN at + interval '1 hour' END
FROM (
    SELECT n, now() - (%(n)s - n) * (interval '30 days' / %(n)s) AS at,
           CASE WHEN abs(hashint8(n)) %% 10 < 3 THEN ''
                ELSE 'acct_1Bench' || lpad((1 + (n * 7919) %% (1 + (n %% 17) * 17))::text, 6, '0') END AS acct,
           (ARRAY['charge.succeeded', 'payment_intent.succeeded', 'payment_intent.created', 'invoice.paid',
                  'checkout.session.completed', 'customer.updated', 'customer.subscription.updated',
                  'invoice.created', 'charge.refunded', 'refund.created'])[1 + abs(hashint8(n + 1)) %% 10] AS typ,
           CASE WHEN n > %(n)s - 300 THEN 'received'
                WHEN n %% 40000 = 7 THEN 'failed'
                WHEN n > %(n)s - 100000 AND n %% 300 = 11 THEN 'waiting'
                WHEN abs(hashint8(n + 2)) %% 10 < 3 THEN 'ignored'
                ELSE 'processed' END AS st
    FROM generate_series(1::bigint, %(n)s::bigint) n
) e
"""
# One rare type (0.1%) among them: charge.dispute.created, the worst type filter.
RARE = "UPDATE events SET type = 'charge.dispute.created' WHERE id IN (SELECT id FROM events TABLESAMPLE SYSTEM (0.1))"


def fill(url: str, n: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE events, event_attempts, activity CASCADE")
        started = time.perf_counter()
        with conn.transaction():
            conn.execute(ACCOUNTS)
            conn.execute(FILL, {"n": n})
            conn.execute(RARE)
        print(f"filled {n:,} events in {time.perf_counter() - started:.0f} s")
        conn.execute("VACUUM ANALYZE events")


def ensure_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    migrate(url)


def client_of(url: str):
    from teachery_sync.bootstrap import build
    from webhooks.app import create_app

    settings = Settings(database_url=url, redis_url=REDIS_URL, webhook_secrets=("whsec_bench",),
                        stripe_api_key="sk_test_bench", admin_token=TOKEN)
    services = build(settings, pool_size=2).open()
    app = create_app(services=services)
    client = app.test_client()
    form = client.get("/admin/sign-in").data
    csrf = re.search(rb'name="csrf_token" value="([^"]+)"', form).group(1).decode()
    assert client.post("/admin/sign-in", data={"token": TOKEN, "csrf_token": csrf}).status_code == 302
    return client


def older_link(page: bytes) -> str | None:
    found = re.search(rb'<a href="([^"]+)" rel="next">', page)
    return found.group(1).decode().replace("&amp;", "&") if found else None


def deep(client, path: str, pages: int = 20) -> str:
    """The path of page `pages + 1`, following the Older links."""
    for _ in range(pages):
        link = older_link(client.get(path).data)
        if link is None:
            break
        path = link
    return path


def timed(client, path: str, runs: int) -> tuple[float, float, int]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        r = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert r.status_code == 200, (path, r.status_code)
    return statistics.median(times), max(times), r.data.count(b"<tr>") - 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-fill", action="store_true")
    args = parser.parse_args()
    ensure_database(DATABASE_URL)
    if not args.no_fill:
        fill(DATABASE_URL, args.events)
    with psycopg.connect(DATABASE_URL) as conn:
        count = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        small = conn.execute("SELECT account FROM events WHERE account <> '' GROUP BY account "
                             "ORDER BY count(*) LIMIT 1").fetchone()[0]
        big = conn.execute("SELECT account FROM events WHERE account <> '' GROUP BY account "
                           "ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
        mid_at, mid_id = conn.execute("SELECT received_at, id FROM events ORDER BY received_at, id "
                                      "OFFSET %s LIMIT 1", (count // 10,)).fetchone()
        ago = "SELECT to_char(now() - make_interval(days => %s), 'YYYY-MM-DD\"T\"HH24:MI:SS')"
        week_ago, two_weeks = (conn.execute(ago, (days,)).fetchone()[0] for days in (7, 14))
    print(f"{count:,} events; small account {small}, big account {big}")
    client = client_of(DATABASE_URL)
    keyset = urlencode({"before": mid_at.isoformat(), "before_id": mid_id})
    cases = {
        "no filter": "",
        "status=failed": "status=failed",
        "status=waiting": "status=waiting",
        "status=processed": "status=processed",
        "type=charge.refunded": "type=charge.refunded",
        "type=charge.dispute.created (0.1%)": "type=charge.dispute.created",
        "type=none.such (no event)": "type=none.such",
        f"account={small} (smallest)": f"account={small}",
        f"account={big} (biggest)": f"account={big}",
        "account=platform": "account=platform",
        "from=7 days ago": f"from={week_ago}",
        "to=7 days ago": f"to={week_ago}",
        "from=14 days to=7 days ago": f"from={two_weeks}&to={week_ago}",
        "status=processed&type=invoice.paid&account=platform": "status=processed&type=invoice.paid&account=platform",
        f"type=invoice.paid&account={small}": f"type=invoice.paid&account={small}",
        "status=ignored&type=charge.dispute.created": "status=ignored&type=charge.dispute.created",
        "status=failed&account=platform": "status=failed&account=platform",
        "type=charge.refunded&account=acct_1Bench000299 (no event)": "type=charge.refunded&account=acct_1Bench000299",
    }
    print(f"{'page':60} {'first p50':>9} {'max':>6} {'page 21 p50':>11} {'max':>6} {'90% deep p50':>12} {'max':>6}")
    for name, query in cases.items():
        first = "/admin/events?" + query
        first_ms, first_max, rows = timed(client, first, args.runs)
        page21 = deep(client, first)
        deep_ms, deep_max, _ = timed(client, page21, args.runs)
        far_ms, far_max, _ = timed(client, first + ("&" if query else "") + keyset, args.runs)
        print(f"{name:60} {first_ms:9.1f} {first_max:6.1f} {deep_ms:11.1f} {deep_max:6.1f} {far_ms:12.1f}"
              f" {far_max:6.1f}  ({rows} rows)")
    for name, path in {"health (3 h)": "/admin/health", "health (24 h)": "/admin/health?hours=24",
                       "replay-failed (count)": "/admin/events/replay-failed"}.items():
        ms, worst, _ = timed(client, path, args.runs)
        print(f"{name:60} {ms:9.1f} {worst:6.1f}")


if __name__ == "__main__":
    main()
