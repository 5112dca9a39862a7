"""Shared set-up for the benchmarks: a clean database and Redis db, and realistic event histories."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import psycopg
import psycopg.sql
import redis

from webhooks.signature import signature_header

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://root@127.0.0.1:5432/teachery_sync_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
SECRET = "whsec_bench"


def fresh_stores(database_url: str = DATABASE_URL) -> None:
    """Create (when missing) and migrate a bench database, empty every table and the Redis db."""
    from domain.migrate import migrate
    from tests.support import truncate_all

    admin = database_url.rsplit("/", 1)[0] + "/postgres"
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    migrate(database_url)
    truncate_all(database_url)
    redis.Redis.from_url(REDIS_URL).flushdb()


def signed(body: bytes) -> str:
    return signature_header(body, SECRET)


def history(n: int, account: str | None = None) -> list[dict]:
    """About a dozen events for customer n: purchase, two refunds (one fails), pause, resume, cancel."""
    t0 = 1_764_000_000 + n * 1000
    cus, ch, pi, sub = f"cus_B{n:06d}", f"ch_B{n:06d}", f"pi_B{n:06d}", f"sub_B{n:06d}"
    seq = iter(range(100))

    def ev(type_, obj, created, prev=None):
        e = {"id": f"evt_B{n:06d}_{next(seq):02d}", "object": "event", "api_version": "2024-06-20",
             "created": created, "type": type_, "account": account, "livemode": False,
             "data": {"object": obj}}
        if prev is not None:
            e["data"]["previous_attributes"] = prev
        return e

    def charge(refunded=0):
        return {"id": ch, "object": "charge", "amount": 4900, "currency": "usd", "customer": cus,
                "status": "succeeded", "payment_intent": pi, "created": t0, "amount_refunded": refunded,
                "metadata": {"course_id": "course_bench"}}

    def refund(rid, amount, status):
        return {"id": rid, "object": "refund", "amount": amount, "currency": "usd", "charge": ch,
                "status": status, "reason": None, "metadata": {}}

    def subscription(**kw):
        base = {"id": sub, "object": "subscription", "customer": cus, "status": "active", "pause_collection": None,
                "cancel_at_period_end": False, "cancel_at": None, "canceled_at": None, "ended_at": None,
                "metadata": {"course_id": "course_bench_sub"}, "current_period_end": t0 + 30 * 86400}
        return {**base, **kw}

    session = {"id": f"cs_B{n:06d}", "object": "checkout.session", "mode": "payment", "customer": cus,
               "payment_intent": pi, "payment_status": "paid", "amount_total": 4900, "currency": "usd",
               "created": t0, "customer_details": {"email": f"c{n}@example.com", "name": f"Customer {n}"},
               "metadata": {"course_id": "course_bench"}}
    return [
        ev("checkout.session.completed", session, t0),
        ev("charge.succeeded", charge(), t0),
        ev("customer.subscription.created", subscription(), t0),
        ev("refund.created", refund(f"re_B{n:06d}a", 1000, "succeeded"), t0 + 10),
        ev("charge.refunded", charge(1000), t0 + 10),
        ev("refund.created", refund(f"re_B{n:06d}b", 500, "pending"), t0 + 20),
        ev("refund.failed", refund(f"re_B{n:06d}b", 500, "failed"), t0 + 30),
        ev("customer.subscription.updated", subscription(pause_collection={"behavior": "void", "resumes_at": None}),
           t0 + 40),
        ev("customer.subscription.updated", subscription(), t0 + 50),
        ev("customer.subscription.updated", subscription(cancel_at_period_end=True, cancel_at=t0 + 30 * 86400),
           t0 + 60),
        ev("customer.subscription.deleted", subscription(status="canceled", canceled_at=t0 + 70, ended_at=t0 + 70),
           t0 + 70),
        ev("customer.updated", {"id": cus, "object": "customer", "name": f"Customer {n} Renamed",
                                "email": f"c{n}@example.com"}, t0 + 80),
    ]


def body(event: dict) -> bytes:
    return json.dumps(event).encode()
