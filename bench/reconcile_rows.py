"""Our side for bench/reconcile.py: a fresh bench database seeded by COPY with the rows the handlers would
hold for bench/stripe_dataset.py's objects, snapshots of those rows, and the checks after a run."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb
from stripe_dataset import ACCOUNTS, COURSE, KINDS, SUB_COURSE, Dataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.support
CLI = str(Path(sys.executable).parent / "teachery-sync")

CUSTOMER_COLUMNS = ("id", "account", "stripe_customer_id", "name", "email", "deleted_in_stripe", "stripe_created",
                    "stripe_rank")
PAYMENT_COLUMNS = ("account", "customer_id", "stripe_customer_id", "stripe_charge_id", "stripe_payment_intent_id",
                   "course_id", "amount", "currency", "charge_status", "amount_refunded", "status", "created",
                   "stripe_created", "stripe_rank")
REFUND_COLUMNS = ("account", "stripe_refund_id", "stripe_charge_id", "amount", "currency", "status", "reason", "origin",
                  "stripe_created", "stripe_rank")
SUBSCRIPTION_COLUMNS = ("account", "stripe_subscription_id", "stripe_customer_id", "customer_id", "course_id",
                        "status", "pause_collection", "cancel_at_period_end", "cancel_at", "canceled_at", "ended_at",
                        "current_period_end", "stripe_created", "stripe_rank")

# (kind, table, the Stripe id column): every row a Stripe object of that kind is held in
TABLES = (("customer", "customers", "stripe_customer_id"), ("charge", "payments", "stripe_charge_id"),
          ("refund", "refunds", "stripe_refund_id"), ("subscription", "subscriptions", "stripe_subscription_id"))


def fresh_database(database_url: str, redis_url: str) -> None:
    """Create (when missing) and migrate with `teachery-sync migrate`, then empty every table and the Redis db."""
    import redis

    from tests.support import truncate_all

    subprocess.run([CLI, "migrate"], cwd=ROOT, check=True, capture_output=True,
                   env={**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url})
    truncate_all(database_url)
    redis.Redis.from_url(redis_url).flushdb()


def seed(database_url: str, dataset: Dataset) -> dict[str, int]:
    """Our rows for every bundle (minus the drift), by COPY; returns the rows written per table."""
    rows = {kind: [] for kind in KINDS}
    for bundle in dataset.bundles:
        for kind, row in dataset.local_rows(bundle).items():
            rows[kind].append(row)
    with psycopg.connect(database_url) as conn:
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO accounts (id) VALUES (%s)", [(a,) for a in ACCOUNTS])
            cur.executemany("INSERT INTO courses (account, course_id) VALUES (%s, %s)",
                            [(a, c) for a in ACCOUNTS for c in (COURSE, SUB_COURSE)])
            _copy(cur, "customers", CUSTOMER_COLUMNS, rows["customer"])
            _copy(cur, "payments", PAYMENT_COLUMNS, rows["charge"])
            cur.execute("CREATE TEMP TABLE bench_refunds ON COMMIT DROP AS SELECT "
                        f"{', '.join(REFUND_COLUMNS)} FROM refunds WITH NO DATA")
            _copy(cur, "bench_refunds", REFUND_COLUMNS, rows["refund"])
            cur.execute(f"""INSERT INTO refunds ({", ".join(REFUND_COLUMNS)}, payment_id)
                            SELECT {", ".join("r." + c for c in REFUND_COLUMNS)}, p.id FROM bench_refunds r
                            JOIN payments p ON p.account = r.account AND p.stripe_charge_id = r.stripe_charge_id""")
            _copy(cur, "subscriptions", SUBSCRIPTION_COLUMNS, rows["subscription"])
            enrollments = [(r["customer_id"], r["course_id"]) for kind in ("charge", "subscription")
                           for r in rows[kind]]
            with cur.copy("COPY enrollments (customer_id, course_id) FROM STDIN") as copy:
                for row in enrollments:
                    copy.write_row(row)
        conn.execute("ANALYZE")
    return {kind: len(r) for kind, r in rows.items()}


def _copy(cur, table: str, columns: tuple[str, ...], rows: list[dict]) -> None:
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([Jsonb(row[c]) if c == "pause_collection" and row[c] is not None else row[c]
                            for c in columns])


def snapshot(database_url: str) -> dict[tuple[str, str, str], str]:
    """Every row a Stripe object is held in, whole (updated_at and version included): (kind, account, id) → JSON."""
    out = {}
    with psycopg.connect(database_url) as conn:
        for kind, table, column in TABLES:
            for account, object_id, row in conn.execute(
                    f"SELECT account, {column}, row_to_json(t)::text FROM {table} t WHERE {column} IS NOT NULL"):
                out[(kind, account, object_id)] = row
    return out


def touched(before: dict, after: dict, dataset: Dataset, database_url: str) -> dict[str, list]:
    """What a run changed that did not drift: rows whose fields changed (or that were added or removed),
    rows whose only change is `updated_at`, and the activity entries a reconciliation wrote about objects
    (an enrollment's entry: about its customer) that did not drift."""
    drifted = dataset.drifted()
    changed, stamped = [], []
    for key in sorted(before.keys() | after.keys()):
        if (key[1], key[2]) in drifted or before.get(key) == after.get(key):
            continue
        old, new = (json.loads(x) if x else None for x in (before.get(key), after.get(key)))
        if old and new and {**old, "updated_at": None} == {**new, "updated_at": None}:
            stamped.append(key)
        else:
            changed.append(key)
    with psycopg.connect(database_url) as conn:
        logged = conn.execute(
            "SELECT a.account, CASE WHEN a.record_type IN ('customer', 'payment', 'refund', 'subscription') "
            "THEN a.record_id ELSE c.stripe_customer_id END, count(*) FROM activity a "
            "LEFT JOIN customers c ON c.id = a.customer_id WHERE a.origin = 'reconciliation' GROUP BY 1, 2").fetchall()
    activity = sorted((a, rid, n) for a, rid, n in logged if (a, rid) not in drifted)
    return {"rows": changed, "updated_at_only": stamped, "activity": activity}


def left_over(database_url: str, dataset: Dataset) -> list[tuple[str, str, str]]:
    """Drift still there after the run, by the project's own comparison (workers/drift.py)."""
    from domain import reconciliations
    from workers.drift import differences

    objects = dataset.stripe_objects()
    for (account, _), stub in dataset.deleted_customers().items():
        objects[(account, "customer")].append(stub)
    left = []
    with psycopg.connect(database_url) as conn:
        for (account, kind), objs in objects.items():
            local = reconciliations.local_rows(conn, kind, account, [o["id"] for o in objs])
            for obj in objs:
                left += [(account, obj["id"], item["field"]) for item in differences(kind, obj, local.get(obj["id"]))]
    return left


def run_report(database_url: str, run_id: str) -> dict:
    """A run's row, and its drift items: the rows of reconciliation_drift (migration 0010), or the `drift`
    column of the runs that still wrote it (before the run loop wrote rows; migration 0011 drops it)."""
    with psycopg.connect(database_url) as conn:
        columns = {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'reconciliation_runs'")}
        wanted = [c for c in ("resumed", "progress", "cursor", "drift") if c in columns]
        row = conn.execute("SELECT status, checked, fixed, error, extract(epoch FROM finished_at - started_at)"
                           f"{''.join(', ' + c for c in wanted)} FROM reconciliation_runs WHERE id = %s",
                           (run_id,)).fetchone()
        if row is None:
            raise SystemExit(f"no reconciliation run {run_id}")
        items = []
        if "resumed" in columns:  # migration 0010: the table exists too
            items = [{"account": a, "object": o, "field": f, "local": loc, "stripe": s, "fixed": fx}
                     for a, o, f, loc, s, fx in conn.execute(
                        "SELECT account, object, field, local, stripe, fixed FROM reconciliation_drift "
                        "WHERE run_id = %s ORDER BY seq", (run_id,))]
    status, checked, fixed, error, seconds, *rest = row
    report = {"status": status, "checked": checked, "fixed": fixed, "error": error,
              "seconds": float(seconds) if seconds is not None else None, **dict(zip(wanted, rest, strict=True))}
    drift = report.pop("drift", None) or []
    report["items"] = items or [dict(item) for item in drift]
    report["source"] = ("reconciliation_drift" if items else "reconciliation_runs.drift" if drift
                        else "neither (no drift item recorded)")
    return report


def item_key(item: dict) -> tuple:
    """What two reports of the same data must agree on, per drift item."""
    return (item["object"], item["field"], json.dumps(item.get("local"), sort_keys=True),
            json.dumps(item.get("stripe"), sort_keys=True), bool(item.get("fixed")))
