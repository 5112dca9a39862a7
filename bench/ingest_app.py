"""The receiver's own CPU per webhook, without HTTP: its WSGI app against the floor's, in this process.

    python bench/ingest_app.py [--events 4000] [--threads 8] [--runs 3]

Drives `create_app(...)` (the fast path, group commit, the real PostgreSQL and Redis, logging configured as
`web` configures it, JSON to /dev/null) and bench/floor/limit_receiver.py's `app` with --threads threads
calling the app directly, each run its own distinct signed ~3 KB events, alternating, and prints the CPU
this process spent per event (and events/s). gunicorn's share (parsing, the keep-alive loop) is left out:
it is the same for both, and bench/ingest.py measures it with the rest. Steadier than bench/ingest.py for
a change of a few microseconds; with --profile, cProfile (per-thread CPU) of the service's runs.
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import io
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import DATABASE_URL, REDIS_URL, SECRET, fresh_stores

FLOOR = Path(__file__).resolve().parent / "floor"
sys.path.insert(0, str(FLOOR))
from make_wrk_script import event  # noqa: E402


def signed_bodies(n: int, tag: str) -> list[tuple[bytes, str]]:
    now = int(time.time())
    bodies = []
    for i in range(n):
        body = json.dumps(event(i, now, tag), separators=(",", ":")).encode()
        mac = hmac.new(SECRET.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
        bodies.append((body, f"t={now},v1={mac}"))
    return bodies


def drive(app, bodies, threads: int, profiles: list | None = None) -> tuple[float, float, int]:
    """(CPU µs per event of this process, events/s, answers other than 200)."""
    todo = iter(bodies)
    lock = threading.Lock()
    refused = []

    def post():
        while True:
            with lock:
                item = next(todo, None)
            if item is None:
                return
            body, signature = item
            environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/webhooks/stripe", "QUERY_STRING": "",
                       "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": "application/json",
                       "HTTP_STRIPE_SIGNATURE": signature, "wsgi.input": io.BytesIO(body), "SERVER_NAME": "bench",
                       "SERVER_PORT": "80", "wsgi.url_scheme": "http", "HTTP_HOST": "bench"}
            statuses = []
            b"".join(app(environ, lambda status, headers, exc_info=None, into=statuses: into.append(status)))
            if not statuses[0].startswith("200"):
                refused.append(statuses[0])

    def profiled():
        import cProfile

        profile = cProfile.Profile(time.thread_time)
        profiles.append(profile)
        profile.runcall(post)

    workers = [threading.Thread(target=profiled if profiles is not None else post) for _ in range(threads)]
    cpu, wall = time.process_time(), time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return 1e6 * cpu / len(bodies), len(bodies) / wall, len(refused)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=8, help="as `web`'s gunicorn threads and the floor's")
    parser.add_argument("--runs", type=int, default=3, help="runs of each (alternating)")
    parser.add_argument("--profile", action="store_true", help="cProfile the service's runs; print the top")
    args = parser.parse_args()
    fresh_stores()
    os.environ.update(DATABASE_URL=DATABASE_URL, REDIS_URL=REDIS_URL, STRIPE_WEBHOOK_SECRET=SECRET,
                      BENCH_DSN=DATABASE_URL, BENCH_REDIS=REDIS_URL)
    from teachery_sync.bootstrap import build
    from teachery_sync.logs import configure_logging
    from teachery_sync.metrics_dir import open_metrics_dir
    from webhooks.app import create_app

    devnull = open(os.devnull, "w")  # noqa: SIM115 - the log lines' stream for the whole run
    out, sys.stderr = sys.stderr, devnull
    configure_logging("json", secrets=[SECRET])
    open_metrics_dir(tempfile.mkdtemp(prefix="ingest-app-metrics-"))
    service = create_app(build(pool_size=args.threads, web=True))
    import limit_receiver

    profiles = [] if args.profile else None
    results = {"service": [], "floor": []}
    for n in range(args.runs):
        for name, app in (("service", service), ("floor", limit_receiver.app)):
            cpu, rate, refused = drive(app, signed_bodies(args.events, f"_{name[0]}app{n}_{time.time_ns()}"),
                                       args.threads, profiles if name == "service" else None)
            results[name].append(cpu)
            print(f"run {n + 1} {name:7s}: CPU {cpu:5.0f} µs/event, {rate:6.0f} events/s, not 200: {refused}",
                  file=out, flush=True)
    sys.stderr = out
    service_cpu, floor_cpu = (sorted(results[k])[len(results[k]) // 2] for k in ("service", "floor"))
    print(f"INGEST APP CPU per event: service {service_cpu:.0f} µs, floor {floor_cpu:.0f} µs "
          f"(medians of {args.runs}; service/floor {service_cpu / floor_cpu:.2f})")
    if profiles:
        import pstats

        stats = pstats.Stats(profiles[0])
        for profile in profiles[1:]:
            stats.add(profile)
        stats.sort_stats("cumulative").print_stats(40)
    os._exit(0)  # the pools' and the group commit's threads need no orderly stop


if __name__ == "__main__":
    main()
