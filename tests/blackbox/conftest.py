"""Black-box fixtures: the real service (tests/blackbox/service.py) against the fake Stripe, started once
for the suite, with empty tables, a fresh fake and a live worker for each test. When the suite ends, no
`teachery-sync` process it started may be left running."""
from __future__ import annotations

import contextlib
import os
import signal
import uuid
from pathlib import Path

import pytest
import redis
import requests
from rq import Queue

from tests.blackbox.service import DATABASE_URL, REDIS_URL, running_service
from tests.support import truncate_all
from webhooks.auth_failures import forget_all
from workers.queueing import QUEUES

SUITE_MARK = "TEACHERY_BLACKBOX_SUITE"  # in the environment of every process the suite starts


def suite_processes(mark: str) -> list[tuple[int, str]]:
    """(pid, command line) of the running `teachery-sync` processes whose environment carries the mark."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # gone meanwhile, or not ours
            continue
        if f"{SUITE_MARK}={mark}".encode() in environ and state != "Z" and \
                ("teachery-sync" in cmdline or "teachery_sync" in cmdline):
            found.append((int(entry), cmdline.strip()))
    return found


@pytest.fixture(scope="package", autouse=True)
def no_process_left_behind():
    """Marks what the suite starts (through the environment children inherit); at its end, kills and
    names every marked `teachery-sync` process still running (an orphaned worker would take the next
    run's jobs)."""
    mark = uuid.uuid4().hex
    os.environ[SUITE_MARK] = mark
    try:
        yield
    finally:
        del os.environ[SUITE_MARK]
    left = suite_processes(mark)
    for pid, _ in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if left:
        pytest.fail("teachery-sync processes the black-box suite started were still running at its end "
                    "(killed now):\n" + "\n".join(f"  {pid}: {cmdline}" for pid, cmdline in left), pytrace=False)


@pytest.fixture(scope="package")
def service(no_process_left_behind):
    with running_service("teachery-blackbox-") as svc:
        yield svc


@pytest.fixture
def svc(service):
    """The service with empty tables, a fresh fake Stripe and a live worker."""
    service.ensure_worker()
    truncate_all(DATABASE_URL)
    r = redis.Redis.from_url(REDIS_URL)
    forget_all(r)  # each test starts with no failed sign-ins counted
    for name in QUEUES:  # nor an earlier test's failed jobs
        failed = Queue(name, connection=r).failed_job_registry
        for job_id in failed.get_job_ids():
            failed.remove(job_id, delete_job=True)
    service.fake.reset()
    yield service
    # Leave nothing half-applied for the next test: a service that cannot settle fails this test's teardown
    # (with the unsettled events), rather than the next test in a confusing way.
    try:
        service.wait_settled(timeout=15, allow_waiting=True)
    except (AssertionError, requests.RequestException) as exc:
        pytest.fail(f"the service did not settle after the test (logs in {service.logdir}): {exc}")
