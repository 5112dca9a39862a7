"""Shared fixtures: a real PostgreSQL database and a real Redis, cleaned per test.

TEST_DATABASE_URL and TEST_REDIS_URL choose them (defaults: database teachery_sync_test on
127.0.0.1, Redis db 15), so several test runs on one machine can use different ones.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import psycopg
import pytest
import stripe
from rq import Queue

from domain.migrate import migrate
from domain.settings import Settings
from teachery_sync.bootstrap import build
from webhooks.signature import signature_header
from workers import jobs
from workers.queueing import QUEUES
from workers.worker import EventWorker

ROOT = Path(__file__).resolve().parents[1]
# Real Stripe payloads (see tests/fixtures/stripe/SOURCES.md): a copy of ../shared/fixtures/stripe's
# events/ and objects/, so the tests run from any clone.
FIXTURES = Path(os.environ.get("STRIPE_FIXTURES", ROOT / "tests" / "fixtures" / "stripe"))

WEBHOOK_SECRET = "whsec_test_secret_for_tests"
ADMIN_TOKEN = "test-admin-token"
STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens: unmocked calls fail at once
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://root@127.0.0.1:5432/teachery_sync_test")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

TABLES = ["activity", "refunds", "payments", "payment_links", "enrollments", "subscriptions", "course_hints",
          "courses", "customers", "events", "accounts", "reconciliation_runs", "outbox", "admin_actions"]


def load_fixture(relative: str) -> dict:
    """A real Stripe payload from ../shared/fixtures/stripe (see its SOURCES.md)."""
    return json.loads((FIXTURES / relative).read_text())


@pytest.fixture(scope="session")
def database_url():
    migrate(TEST_DATABASE_URL)
    return TEST_DATABASE_URL


@pytest.fixture
def settings(database_url):
    return Settings(
        database_url=database_url,
        redis_url=TEST_REDIS_URL,
        webhook_secrets=(WEBHOOK_SECRET,),
        stripe_api_key="sk_test_123",
        stripe_api_base=STRIPE_API_BASE,
        admin_token=ADMIN_TOKEN,
        stripe_network_retries=0,
    )


@pytest.fixture
def services(settings):
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        existing = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        conn.execute("TRUNCATE " + ", ".join(t for t in TABLES if t in existing) + " RESTART IDENTITY CASCADE")
    svc = build(settings, pool_size=4).open()
    svc.redis.flushdb()
    jobs.install(svc)
    yield svc
    jobs.install(None)
    svc.close()


@pytest.fixture
def app(services):
    from webhooks.app import create_app

    app = create_app(services=services)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):
    return app.test_client()


def sign(body: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A Stripe-Signature header for body."""
    return signature_header(body, secret, timestamp)


@pytest.fixture
def deliver(client):
    """POST an event dict (or raw bytes) to the receiver, correctly signed."""

    def _deliver(event, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None):
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        return client.post("/webhooks/stripe", data=body,
                           headers={"Stripe-Signature": sign(body, secret, timestamp),
                                    "Content-Type": "application/json"})

    return _deliver


@pytest.fixture
def run_worker(services):
    """Drain the queue in this process, as `teachery-sync worker --burst` does."""

    def _run():
        worker = EventWorker([Queue(name, connection=services.redis) for name in QUEUES], connection=services.redis)
        worker.services = services
        worker.work(burst=True, with_scheduler=False, logging_level="WARNING")

    return _run


@pytest.fixture
def admin(client):
    """Call the admin API with the right bearer token; returns (status, json)."""

    def _call(method: str, path: str, body: dict | None = None):
        response = client.open(f"/admin/api{path}", method=method, json=body,
                               headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        return response.status_code, response.get_json()

    return _call


# --- appended for the issue-2 suite (tests/integration, tests/e2e) -----------------------------

@pytest.fixture
def stripe_api():
    """The Stripe API faked with `responses` (see tests/stripe_events.py FakeStripeApi)."""
    import responses

    from tests.stripe_events import FakeStripeApi

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeStripeApi(rsps, STRIPE_API_BASE)


@pytest.fixture
def profile(admin):
    """The profile of a Stripe customer as GET /admin/api/stripe-customers/{cus} shows it (None if 404)."""

    def _profile(cus_id: str, account: str | None = None):
        path = f"/stripe-customers/{cus_id}" + (f"?account={account}" if account else "")
        status, body = admin("GET", path)
        if status == 404:
            return None
        assert status == 200, (status, body)
        return body

    return _profile


@pytest.fixture
def send(deliver, run_worker):
    """Deliver events (each must answer 200), then drain the queue."""

    def _send(*events, work: bool = True):
        for event in events:
            response = deliver(event)
            assert response.status_code == 200, (event.get("type"), response.status_code, response.get_data())
        if work:
            run_worker()

    return _send


@pytest.fixture
def again(deliver, admin, run_worker):
    """Deliver the same events again (each must be a duplicate), replay them through the admin API, work."""

    def _again(*events):
        for event in events:
            response = deliver(event)
            assert response.get_json() == {"received": True, "duplicate": True}
            status, body = admin("POST", f"/events/{event['id']}/replay")
            assert status == 202, body
        run_worker()

    return _again
