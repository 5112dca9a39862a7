"""Shared fixtures: a real PostgreSQL database and a real Redis, cleaned per test, and the fake Stripe.

TEST_DATABASE_URL and TEST_REDIS_URL choose them (defaults: database teachery_sync_test on
127.0.0.1, Redis db 15), so several test runs on one machine can use different ones. Helpers that
test modules import live in tests/support.py, never here.

Every test is marked by its directory (unit, integration, e2e, blackbox): `pytest -m unit` runs the
tests that need no server at all.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from rq import Queue

from domain.migrate import migrate
from domain.settings import Settings
from teachery_sync.bootstrap import build
from tests.fake_stripe import shared_server
from tests.stripe_events import DAY, T0
from tests.support import ADMIN_TOKEN, NO_STRIPE, TEST_DATABASE_URL, TEST_REDIS_URL, WEBHOOK_SECRET, sign, truncate_all
from workers import jobs
from workers.queueing import QUEUES
from workers.worker import EventWorker

SUITES = ("unit", "integration", "e2e", "blackbox", "browser")


def pytest_collection_modifyitems(config, items):
    """Mark each test with its suite: the directory it lives in under tests/."""
    tests = Path(__file__).parent
    for item in items:
        suite = item.path.relative_to(tests).parts[0] if tests in item.path.parents else None
        if suite in SUITES:
            item.add_marker(getattr(pytest.mark, suite))


@pytest.fixture(scope="session")
def database_url():
    migrate(TEST_DATABASE_URL)
    return TEST_DATABASE_URL


@pytest.fixture
def stripe_api():
    """The fake Stripe (tests/fake_stripe), emptied; a test that asks for it has the service's
    stripe_api_base pointed at it. Its clock starts ten days after the payloads' T0, so what it
    sends about our admin actions is newer than the purchases a test made at T0; a refund it creates
    answers `pending`, as most card refunds first do."""
    fake = shared_server().fake
    fake.reset(now=T0 + 10 * DAY, refund_answer_status="pending")
    return fake


@pytest.fixture(scope="session")
def metrics_dir(tmp_path_factory):
    """This test process counts into a directory of its own (as `teachery-sync web`/`worker` do into theirs),
    which the app's /metrics sums; counts add up across tests: compare before and after."""
    from teachery_sync.metrics_dir import open_metrics_dir

    return open_metrics_dir(str(tmp_path_factory.mktemp("metrics"))).path


@pytest.fixture
def settings(database_url, metrics_dir, request):
    # Without the fake, the API is an address where nothing listens: a call fails at once.
    base = request.getfixturevalue("stripe_api").url if "stripe_api" in request.fixturenames else NO_STRIPE
    return Settings(
        database_url=database_url,
        redis_url=TEST_REDIS_URL,
        webhook_secrets=(WEBHOOK_SECRET,),
        stripe_api_key="sk_test_123",
        stripe_api_base=base,
        admin_token=ADMIN_TOKEN,
        stripe_network_retries=0,
        metrics_dir=metrics_dir,
    )


@pytest.fixture
def services(settings):
    truncate_all(settings.database_url)
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
