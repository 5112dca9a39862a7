"""Drain against RQ's own per-job rate, in one run.

    python bench/drain.py [--customers 300] [--duplicates 0.3] [--noop-jobs 2000] [--workers 1,2,4]

1. RQ's floor: --noop-jobs no-op jobs run by RQ's SimpleWorker (burst), measured before and after the
   drain (the mean of the two is the floor).
2. The drain: about a dozen events per customer (bench/common.py's stories), shuffled, 30% of them
   delivered twice, posted through the receiver (the Flask app, in this process) with no worker running;
   then `teachery-sync worker` until the ledger is idle (nothing received, processing or waiting).
   Events/s counts distinct events; the worker's peak RSS is sampled. With --workers 1,2,4 the ledger
   is stored again and drained by 1, then 2, then 4 worker processes, each drain between two no-op runs;
   conflict retries (the workers' "running it again" lines) and deadlocks (pg_stat_database) are counted.
3. The reference: the same deliveries applied one event at a time (each applied as it arrives, wake-ups
   run at once, waits retried until none is left), in a second database; every customer's profile must
   be identical (its records; the activity's wording depends on the order events were applied in).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil
import psycopg
import redis
import structlog
from common import DATABASE_URL, REDIS_URL, ROOT, SECRET, body, fresh_stores, history, signed

from domain.sql import compose, load

REFERENCE_DATABASE_URL = DATABASE_URL + "_reference"
NOOP_QUEUE = "bench-noop"
LOG_FILE = "/tmp/teachery-bench-drain-worker.log"


def noop_rate(jobs: int) -> float:
    """RQ SimpleWorker's rate on no-op jobs (a separate process, like the real worker)."""
    from rq import Queue

    r = redis.Redis.from_url(REDIS_URL)
    queue = Queue(NOOP_QUEUE, connection=r)
    with r.pipeline() as pipe:
        for _ in range(jobs):
            queue.enqueue("noop_job.noop", result_ttl=0, pipeline=pipe)
        pipe.execute()
    code = ("import sys, time, redis; from rq import Queue, SimpleWorker; "
            f"r = redis.Redis.from_url({REDIS_URL!r}); w = SimpleWorker([Queue({NOOP_QUEUE!r}, connection=r)], "
            "connection=r); t = time.perf_counter(); w.work(burst=True, logging_level='ERROR'); "
            "print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parent, capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)})
    return jobs / float(out.stdout.strip().splitlines()[-1])


def deliveries(customers: int, duplicates: float) -> list[dict]:
    events = [e for n in range(customers) for e in history(n)]
    rng = random.Random(7)
    extra = rng.sample(events, int(len(events) * duplicates))
    sent = events + extra
    rng.shuffle(sent)
    return sent


def post_all(app, sent: list[dict]) -> None:
    client = app.test_client()
    for event in sent:
        raw = body(event)
        response = client.post("/webhooks/stripe", data=raw, headers={"Stripe-Signature": signed(raw),
                                                                      "Content-Type": "application/json"})
        assert response.status_code == 200, response.get_data(as_text=True)


def unsettled(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT count(*) FROM events WHERE status IN ('received', 'processing', 'waiting')"
                            ).fetchone()[0]


def run_workers(database_url: str, timeout: float, count: int) -> tuple[float, float, int, int]:
    """`count` `teachery-sync worker` processes (events only) until the ledger is idle: (seconds from their
    start, seconds from the first one's registration with RQ, peak RSS of one in bytes, conflict retries)."""
    from workers.queueing import QUEUE_NAME

    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": REDIS_URL, "LOG_FORMAT": "json"}
    started = time.perf_counter()
    procs = []
    for n in range(count):
        with open(f"{LOG_FILE}.{n}", "w") as log:  # the worker writes to its own copy of the file descriptor
            procs.append(subprocess.Popen([str(Path(sys.executable).parent / "teachery-sync"), "worker",
                                           "--queues", QUEUE_NAME], cwd=ROOT, env=env, stdout=log, stderr=log))
    peak, ready = 0, None
    r = redis.Redis.from_url(REDIS_URL)
    try:
        watched = [psutil.Process(p.pid) for p in procs]
        while time.perf_counter() - started < timeout:
            for ps in watched:
                with contextlib.suppress(psutil.Error):
                    peak = max(peak, ps.memory_info().rss)
            if ready is None and r.scard("rq:workers"):
                ready = time.perf_counter()  # RQ registered one: from here on it works (like the no-op run)
            if unsettled(database_url) == 0:
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    finally:
        for proc in procs:
            proc.terminate()
        for n, proc in enumerate(procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                print(f"a worker did not stop within 30 s of SIGTERM (its log: {LOG_FILE}.{n}); killed")
                proc.kill()
                proc.wait()
    logs_text = [Path(f"{LOG_FILE}.{n}").read_text() for n in range(count)]
    # per event, per batch
    conflicts = sum(t.count("running it again") + t.count("applying it again") for t in logs_text)
    return elapsed, elapsed - (ready - started if ready else 0), peak, conflicts


def deadlocks(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()").fetchone()[0]


def reference(sent: list[dict]) -> None:
    """One event at a time: each delivery stored and applied at once; wake-ups run; waits retried."""
    from rq import Queue

    from domain import ledger
    from domain.settings import Settings
    from teachery_sync.bootstrap import build
    from workers import jobs
    from workers.queueing import QUEUE_NAME
    from workers.worker import EventWorker

    fresh_stores(REFERENCE_DATABASE_URL)
    services = build(Settings(database_url=REFERENCE_DATABASE_URL, redis_url=REDIS_URL,
                              webhook_secrets=(SECRET,))).open()
    jobs.install(services)
    worker = EventWorker([Queue(QUEUE_NAME, connection=services.redis)], connection=services.redis)
    worker.services = services

    def run_queued():
        if services.queue.count:
            worker.work(burst=True, logging_level="ERROR", with_scheduler=False)

    for event in sent:
        with services.pool.connection() as conn:
            new = ledger.record_event(conn, event, raw=body(event))
        if new:
            apply_one(event["id"])
            run_queued()
    for _ in range(20):  # time passes: waits come due
        with services.pool.connection() as conn:
            due = [r[0] for r in conn.execute("UPDATE events SET next_attempt_at = now() WHERE status = 'waiting'"
                                              " RETURNING id").fetchall()]
        if not due:
            break
        for event_id in sorted(due):
            apply_one(event_id, due=True)
        run_queued()
    services.close()


def apply_one(event_id: str, due: bool = False) -> None:
    from workers import jobs

    with contextlib.suppress(Exception):  # an event that gave up: its profile shows it
        jobs.process_event(event_id, due=due)


def profiles(database_url: str) -> dict:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(compose(load("profiles").profile, customer="true")).fetchall()
    out = {}
    for (profile,) in rows:
        profile.pop("id")
        profile.pop("activity")  # the story told depends on the order events were applied in; the state must not
        out[(profile["account"], profile["stripe_customer_id"])] = profile
    return out


def drain_run(sent: list[dict], workers: int, timeout: float) -> dict:
    """Store the deliveries with no worker running, then drain them with `workers` processes."""
    from domain.settings import Settings
    from teachery_sync.bootstrap import build
    from webhooks.app import create_app

    fresh_stores(DATABASE_URL)
    services = build(Settings(database_url=DATABASE_URL, redis_url=REDIS_URL, webhook_secrets=(SECRET,)), web=True)
    started = time.perf_counter()
    post_all(create_app(services=services), sent)
    stored_in = time.perf_counter() - started
    services.close()
    deadlocks_before = deadlocks(DATABASE_URL)
    total, elapsed, peak, conflicts = run_workers(DATABASE_URL, timeout, workers)
    with psycopg.connect(DATABASE_URL) as conn:
        statuses = dict(conn.execute("SELECT status, count(*) FROM events GROUP BY status").fetchall())
        attempts = conn.execute("SELECT count(*) FROM event_attempts").fetchone()[0]
    return {"workers": workers, "stored_in": stored_in, "total": total, "elapsed": elapsed, "peak": peak,
            "conflicts": conflicts, "deadlocks": deadlocks(DATABASE_URL) - deadlocks_before, "statuses": statuses,
            "attempts": attempts, "profiles": profiles(DATABASE_URL)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--duplicates", type=float, default=0.3)
    parser.add_argument("--noop-jobs", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--workers", default="1",
                        help="worker processes draining the one ledger; several counts (1,2,4) run one after another")
    parser.add_argument("--no-reference", action="store_true", help="skip the one-event-at-a-time comparison")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))

    sent = deliveries(args.customers, args.duplicates)
    distinct = len({e["id"] for e in sent})
    print(f"deliveries: {len(sent)} ({distinct} distinct events of {args.customers} customers' shuffled stories, "
          f"{len(sent) - distinct} duplicates), posted with no worker running before each drain")
    fresh_stores(DATABASE_URL)
    floors = [noop_rate(args.noop_jobs)]
    runs = []
    for count in counts:
        run = drain_run(sent, count, args.timeout)
        floors.append(noop_rate(args.noop_jobs))
        run["floor"] = statistics.mean(floors[-2:])  # the no-op rate just before and just after this drain
        run["rate"] = distinct / run["elapsed"]
        runs.append(run)
        print(f"drain by {count} worker(s): {run['elapsed']:.2f}s from the first one's registration with RQ = "
              f"{run['rate']:.0f} events/s ({run['total']:.2f}s = {distinct / run['total']:.0f} events/s "
              f"from the start); per 1,000 events: {run['conflicts'] * 1000 / distinct:.1f} conflict retries, "
              f"{run['deadlocks'] * 1000 / distinct:.1f} deadlocks; ledger {run['statuses']}; "
              f"{run['attempts']} attempts "
              f"({run['attempts'] - distinct} beyond one per event); worker peak RSS {run['peak'] / 2**20:.0f} MiB")
    print("RQ SimpleWorker no-op jobs/s, before and after each drain: " + ", ".join(f"{f:.0f}" for f in floors))
    want = None
    if not args.no_reference:
        reference(sent)
        want = profiles(REFERENCE_DATABASE_URL)
    for run in runs:
        verdict = "skipped"
        if want is not None:
            got = run["profiles"]
            differing = [k for k in want if got.get(k) != want[k]] + [k for k in got if k not in want]
            verdict = "identical" if not differing else f"{len(differing)} of {len(want)} DIFFER (e.g. {differing[0]})"
        print(f"DRAIN ratio drain/RQ no-op: {run['rate'] / run['floor']:.2f}x ({run['workers']} worker(s), "
              f"{run['rate']:.0f} events/s); conflict retries {run['conflicts'] * 1000 / distinct:.1f} and deadlocks "
              f"{run['deadlocks'] * 1000 / distinct:.1f} per 1,000 events; profiles vs one event at a time: {verdict}; "
              f"worker peak RSS {run['peak'] / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
