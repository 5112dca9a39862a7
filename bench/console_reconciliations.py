"""The console's reconciliation pages on a large database: server time of the list of runs, a run's page
(first drift page, a page deep in the drift), and the progress fragment.

    python bench/console_reconciliations.py [--drift 1000000] [--runs 60] [--customers 50000]

Seeds (in its own database, BENCH_DATABASE_URL) `--customers` customers, `--runs` finished runs of which the
newest holds `--drift` drift items about those customers and the others 20,000 each, and a running run;
then times each page through the Flask app in this process (signed in, as a browser is), median of 20.
"""
from __future__ import annotations

import argparse
import re
import statistics
import time

import psycopg
from common import DATABASE_URL, REDIS_URL, fresh_stores

from domain.settings import Settings
from teachery_sync.bootstrap import build
from tests.support import ADMIN_TOKEN
from webhooks.app import create_app
from webhooks.schemas import drift_cursor

SEED = """
INSERT INTO customers (account, stripe_customer_id, name, email)
SELECT '', 'cus_B' || n, 'Customer ' || n, 'c' || n || '@example.com' FROM generate_series(1, %(customers)s) n;
INSERT INTO reconciliation_runs (dry_run, trigger, status, started_at, finished_at, checked, created_at)
SELECT true, 'admin', 'succeeded', now(), now(), 1000, now() - make_interval(mins => n)
FROM generate_series(1, %(runs)s) n;
"""
DRIFT = """
INSERT INTO reconciliation_drift (run_id, account, kind, object, field, local, stripe)
SELECT %(run)s, NULL, 'customer', 'cus_B' || (1 + n %% %(customers)s), 'email' || (n / %(customers)s),
       to_jsonb('old' || n), to_jsonb('new' || n)
FROM generate_series(1, %(n)s) n
"""


def timed(client, path: str, rounds: int = 20) -> float:
    spent = []
    for _ in range(rounds):
        start = time.perf_counter()
        r = client.get(path)
        spent.append(time.perf_counter() - start)
        assert r.status_code == 200, (path, r.status_code)
    return statistics.median(spent) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--drift", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--customers", type=int, default=50_000)
    args = parser.parse_args()
    fresh_stores()
    settings = Settings(database_url=DATABASE_URL, redis_url=REDIS_URL, webhook_secrets=("whsec_bench",),
                        admin_token=ADMIN_TOKEN)
    services = build(settings, pool_size=2).open()
    with services.pool.connection() as conn:
        for statement in SEED.strip().split(";\n"):
            conn.execute(statement.rstrip(";"), {"customers": args.customers, "runs": args.runs})
        ids = [row[0] for row in conn.execute("SELECT id FROM reconciliation_runs ORDER BY created_at DESC")]
        for i, run_id in enumerate(ids):
            conn.execute(DRIFT, {"run": run_id, "customers": args.customers,
                                 "n": args.drift if i == 0 else 20_000})
        running = conn.execute("INSERT INTO reconciliation_runs (dry_run, trigger, status, started_at, checked, "
                               "progress) VALUES (true, 'admin', 'running', now() - interval '1 minute', 5000, "
                               "'{\"platform\": {\"customer\": 5000}}') RETURNING id").fetchone()[0]
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # as autovacuum would after such inserts (index-only counts need it)
        last = conn.execute("SELECT max(seq) FROM reconciliation_drift WHERE run_id = %s", (ids[0],)).fetchone()[0]
    app = create_app(services=services)
    client = app.test_client()
    form = client.get("/admin/sign-in")
    csrf = re.search(rb'name="csrf_token" value="([^"]+)"', form.data).group(1).decode()
    client.post("/admin/sign-in", data={"token": ADMIN_TOKEN, "csrf_token": csrf})
    deep = drift_cursor(last - 150)
    pages = {
        "runs list (50 of them, drift counted)": "/admin/reconciliations",
        "runs list, older page": f"/admin/reconciliations?before={ids[49]}" if len(ids) > 50 else None,
        f"run page, {args.drift:,} drift items, first 100": f"/admin/reconciliations/{ids[0]}",
        "run page, a page deep in the drift": f"/admin/reconciliations/{ids[0]}?drift_after={deep}",
        "running run's page": f"/admin/reconciliations/{running}",
        "progress fragment": f"/admin/reconciliations/{running}/progress",
    }
    print(f"{args.customers:,} customers, {len(ids) + 1} runs, {args.drift + 20_000 * (len(ids) - 1):,} drift items")
    for name, path in pages.items():
        if path:
            print(f"{name:45} {timed(client, path):7.1f} ms (median of 20, server time in process)")
    services.close()


if __name__ == "__main__":
    main()
