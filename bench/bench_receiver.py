"""Receiver throughput: signed POSTs over loopback against `teachery-sync web` (gunicorn)."""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from common import DATABASE_URL, REDIS_URL, ROOT, SECRET, body, fresh_stores, history, signed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, payload: bytes) -> float:
    started = time.perf_counter()
    request = urllib.request.Request(url, data=payload, headers={
        "Stripe-Signature": signed(payload), "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    fresh_stores()
    port = free_port()
    env = {**os.environ, "DATABASE_URL": DATABASE_URL, "REDIS_URL": REDIS_URL, "STRIPE_WEBHOOK_SECRET": SECRET}
    server = subprocess.Popen(
        [sys.executable, "-m", "teachery_sync.cli", "web", "--port", str(port), "--workers", str(args.workers)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        events = [e for n in range(args.events // 12 + 1) for e in history(n)][: args.events]
        payloads = [body(e) for e in events]
        with ThreadPoolExecutor(args.concurrency) as pool:  # warm up the workers' pools
            list(pool.map(lambda p: post(url + "/webhooks/stripe", p), payloads[:50]))
            started = time.perf_counter()
            latencies = list(pool.map(lambda p: post(url + "/webhooks/stripe", p), payloads))
            elapsed = time.perf_counter() - started
        q = statistics.quantiles(latencies, n=100)
        print(f"receiver: {len(payloads)} signed events in {elapsed:.2f}s = {len(payloads) / elapsed:.0f} req/s "
              f"(gunicorn workers={args.workers}, client threads={args.concurrency})")
        print(f"latency ms: p50 {q[49] * 1000:.1f}  p95 {q[94] * 1000:.1f}  p99 {q[98] * 1000:.1f}  "
              f"max {max(latencies) * 1000:.1f}")
        import psycopg

        with psycopg.connect(DATABASE_URL) as conn:
            stored = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        print(f"stored {stored} events (expected {len(payloads)}), each once")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
