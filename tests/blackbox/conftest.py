"""Black-box fixtures: the real service (tests/blackbox/service.py) against the fake Stripe, started once
per session, with empty tables, a fresh fake and a live worker for each test."""
from __future__ import annotations

import pytest
import redis
import requests

from tests.blackbox.service import DATABASE_URL, REDIS_URL, running_service
from tests.support import truncate_all
from webhooks.auth_failures import forget_all


@pytest.fixture(scope="session")
def service():
    with running_service("teachery-blackbox-") as svc:
        yield svc


@pytest.fixture
def svc(service):
    """The service with empty tables, a fresh fake Stripe and a live worker."""
    service.ensure_worker()
    truncate_all(DATABASE_URL)
    forget_all(redis.Redis.from_url(REDIS_URL))  # each test starts with no failed sign-ins counted
    service.fake.reset()
    yield service
    # Leave nothing half-applied for the next test: a service that cannot settle fails this test's teardown
    # (with the unsettled events), rather than the next test in a confusing way.
    try:
        service.wait_settled(timeout=15, allow_waiting=True)
    except (AssertionError, requests.RequestException) as exc:
        pytest.fail(f"the service did not settle after the test (logs in {service.logdir}): {exc}")
