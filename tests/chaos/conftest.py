"""The chaos soak's world: a PostgreSQL and a Redis of its own (tests/chaos/infra.py), the fake Stripe, and
the real service (`teachery-sync migrate`, then `web --workers 2`) against them. The soak starts the
workers itself. Everything is stopped, and the temporary directory removed, at the end (kept when the
soak failed, or with CHAOS_KEEP=1, for its logs)."""
from __future__ import annotations

import os
import shutil

import pytest

from tests.blackbox.service import Service
from tests.chaos.infra import OwnPostgres, OwnRedis, temp_root
from tests.fake_stripe import FakeStripeServer


@pytest.fixture
def world(request):
    root = temp_root()
    (root / "logs").mkdir()
    pg, rds = OwnPostgres(root), OwnRedis(root)
    svc = None
    try:
        pg.init()
        rds.start()
        with FakeStripeServer() as fake_server:
            svc = Service(fake_server, root / "logs", database_url=pg.url, redis_url=rds.url)
            done = svc.cli("migrate")
            assert done.returncode == 0, done.stderr
            svc.start_web()
            yield svc, pg, rds, root
    finally:
        if svc is not None:
            svc.stop_all()
        rds.close()
        pg.close()
        failed = getattr(request.node, "rep_call", None) is None or request.node.rep_call.failed
        if failed or os.environ.get("CHAOS_KEEP"):
            print(f"\nchaos soak files (logs, PostgreSQL and Redis data) kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.rep_call = report
    return report
