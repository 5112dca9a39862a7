"""Worker throughput: realistic histories stored in the ledger, applied by one burst worker."""
from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import time

from common import DATABASE_URL, REDIS_URL, ROOT, SECRET, body, fresh_stores, history


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--shuffle", action="store_true", help="deliver each history in random order")
    parser.add_argument("--processes", type=int, default=1,
                        help="run this many `teachery-sync worker --burst` processes instead of one in-process worker")
    args = parser.parse_args()
    fresh_stores()
    from rq import Queue

    from domain import ledger
    from domain.settings import Settings
    from teachery_sync.bootstrap import build
    from workers import jobs
    from workers.queueing import QUEUE_NAME, enqueue_event
    from workers.worker import EventWorker

    services = build(Settings(database_url=DATABASE_URL, redis_url=REDIS_URL, webhook_secrets=(SECRET,))).open()
    events = [e for n in range(args.customers) for e in history(n)]
    if args.shuffle:
        random.Random(7).shuffle(events)
    started = time.perf_counter()
    with services.pool.connection() as conn:
        for event in events:
            ledger.record_event(conn, event, raw=body(event))
            conn.commit()
    for event in events:
        enqueue_event(services.queue, event["id"])
    stored = time.perf_counter() - started
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    if args.processes > 1:
        env = {**os.environ, "DATABASE_URL": DATABASE_URL, "REDIS_URL": REDIS_URL}
        procs = [subprocess.Popen([sys.executable, "-m", "teachery_sync.cli", "worker", "--burst"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(args.processes)]
        for proc in procs:
            proc.wait()
        rss_after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    else:
        jobs.install(services)
        worker = EventWorker([Queue(QUEUE_NAME, connection=services.redis)], connection=services.redis)
        worker.services = services
        worker.work(burst=True, logging_level="ERROR")
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    elapsed = time.perf_counter() - started
    with services.pool.connection() as conn:
        statuses = dict(conn.execute("SELECT status, count(*) FROM events GROUP BY status").fetchall())
    print(f"worker: {len(events)} events ({args.customers} customers{', shuffled' if args.shuffle else ''}) "
          f"applied in {elapsed:.2f}s = {len(events) / elapsed:.0f} events/s ({args.processes} worker process(es))")
    print(f"stored + enqueued beforehand in {stored:.2f}s; ledger statuses: {statuses}")
    print(f"worker peak RSS: {rss_after / 1024:.0f} MiB (before the run: {rss_before / 1024:.0f} MiB)")


if __name__ == "__main__":
    main()
