"""Browser fixtures: the real service (web, worker) against the fake Stripe, on a database and Redis db of
their own (TEST_BROWSER_DATABASE_URL, TEST_BROWSER_REDIS_URL; defaults teachery_sync_browser and db 10),
and one headless chromium for the session, signed out and on empty tables at each test's start."""
from __future__ import annotations

import os

import pytest
import redis

from tests.blackbox.service import ADMIN_TOKEN, running_service
from tests.browser.console import Console, start_chromium
from tests.support import truncate_all
from webhooks.auth_failures import forget_all

DATABASE_URL = os.environ.get("TEST_BROWSER_DATABASE_URL", "postgresql://root@127.0.0.1:5432/teachery_sync_browser")
REDIS_URL = os.environ.get("TEST_BROWSER_REDIS_URL", "redis://127.0.0.1:6379/10")
# Besides ADMIN_TOKEN (unscoped, named admin): a token of one connected account (tests/browser/test_scopes.py)
SCOPED_ACCOUNT = "acct_1BrowserScoped"
SCOPED_TOKEN = "browser-token-of-one-creator"
SCOPED_TOKENS = f"creator:{SCOPED_TOKEN}:{SCOPED_ACCOUNT}"


@pytest.fixture(scope="session")
def site():
    """The running service, for the browser."""
    with running_service("teachery-browser-", database_url=DATABASE_URL, redis_url=REDIS_URL,
                         env={"ADMIN_TOKENS": SCOPED_TOKENS}) as svc:
        yield svc


@pytest.fixture(scope="session")
def driver():
    chromium = start_chromium()
    yield chromium
    chromium.quit()


@pytest.fixture
def svc(site):
    """The service with empty tables, a fresh fake Stripe and a live worker."""
    site.ensure_worker()
    truncate_all(DATABASE_URL)
    forget_all(redis.Redis.from_url(REDIS_URL))
    site.fake.reset()
    return site


@pytest.fixture
def console(svc, driver):
    """A signed-out browser at the service."""
    driver.delete_all_cookies()
    driver.get(svc.url + "/healthz")
    driver.delete_all_cookies()
    return Console(driver, svc.url, ADMIN_TOKEN)


@pytest.fixture
def signed_in(console):
    console.sign_in()
    console.find("nav .links")
    return console
