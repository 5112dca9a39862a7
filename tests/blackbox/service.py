"""The black-box suite's view of the service: the REAL service (`teachery-sync migrate`, `web`, `worker` as subprocesses)
against a fake Stripe HTTP server, a PostgreSQL database and a Redis db of their own
(TEST_BLACKBOX_DATABASE_URL, TEST_BLACKBOX_REDIS_URL; defaults: teachery_sync_blackbox and db 9),
which they wipe.

Only HTTP and the command line are used to look at the service (plus TRUNCATE / FLUSHDB to
start clean). Every process started here runs in its own process group and is killed in a
finally block, so a failing test never leaves a worker holding a transaction.
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from teachery_sync.embedded import free_port
from tests.fake_stripe import FakeStripeServer
from tests.support import sign as _sign
from tests.worker_processes import kill_group

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent / "teachery-sync"
DATABASE_URL = os.environ.get("TEST_BLACKBOX_DATABASE_URL", "postgresql://root@127.0.0.1:5432/teachery_sync_blackbox")
REDIS_URL = os.environ.get("TEST_BLACKBOX_REDIS_URL", "redis://127.0.0.1:6379/9")
SECRET = "whsec_blackbox_secret_0123456789"
ADMIN_TOKEN = "blackbox-admin-token"
UNSETTLED = ("received", "processing")


def sign(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    """A Stripe-Signature header with the black-box service's secret."""
    return _sign(body, secret, timestamp)


class Service:
    """The running service: URLs, helpers to deliver events and call the admin API, and its processes."""

    def __init__(self, fake_server: FakeStripeServer, logdir: Path, *, database_url: str = DATABASE_URL,
                 redis_url: str = REDIS_URL, env: dict | None = None):
        self.fake_server = fake_server
        self.database_url, self.redis_url = database_url, redis_url
        self.fake = fake_server.fake
        self.logdir = logdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
                    "STRIPE_WEBHOOK_SECRET": SECRET, "ADMIN_TOKEN": ADMIN_TOKEN,
                    "STRIPE_API_KEY": "sk_test_x", "STRIPE_API_BASE": fake_server.url,
                    "TEACHERY_BASE_URL": "https://courses.example", "PYTHONUNBUFFERED": "1",
                    # the service's counters: its own directory, never the machine's default
                    "PROMETHEUS_MULTIPROC_DIR": str(logdir / "metrics"), **(env or {})}
        self.procs: list[subprocess.Popen] = []
        self.web: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.http = requests.Session()

    # --- processes ---------------------------------------------------------------------------

    def spawn(self, name: str, *args: str) -> subprocess.Popen:
        with open(self.logdir / f"{name}-{len(self.procs)}.log", "wb") as log:  # the child keeps its own copy
            proc = subprocess.Popen([str(BIN), *args], env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(proc)
        return proc

    def cli(self, *args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN), *args], env={**self.env, **(env or {})}, cwd=ROOT, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL, start_new_session=True)

    def start_web(self) -> None:
        self.web = self.spawn("web", "web", "--port", str(self.port), "--workers", "2")
        deadline = time.time() + 30
        while time.time() < deadline:
            assert self.web.poll() is None, f"web exited; logs in {self.logdir}"
            try:
                if self.http.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise AssertionError("the web server did not become ready")

    def start_worker(self) -> subprocess.Popen:
        self.worker = self.spawn("worker", "worker")
        return self.worker

    def ensure_worker(self) -> None:
        if self.worker is None or self.worker.poll() is not None:
            self.start_worker()

    def stop_all(self) -> None:
        for proc in self.procs:
            kill_group(proc)

    # --- HTTP --------------------------------------------------------------------------------

    def post_event(self, event, *, secret: str = SECRET, timestamp: int | None = None) -> requests.Response:
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        return self.http.post(self.url + "/webhooks/stripe", data=body, timeout=15,
                              headers={"Stripe-Signature": sign(body, secret, timestamp),
                                       "Content-Type": "application/json"})

    def deliver(self, events) -> None:
        for event in events:
            r = self.post_event(event)
            assert r.status_code == 200, (event["type"], r.status_code, r.text)

    def admin(self, method: str, path: str, body=None, *, headers: dict | None = None):
        r = self.http.request(method, f"{self.url}/admin/api{path}", json=body, timeout=15,
                              headers={"Authorization": f"Bearer {ADMIN_TOKEN}", **(headers or {})})
        try:
            data = r.json()
        except ValueError:
            data = r.text
        return r.status_code, data

    def profile(self, cus_id: str, account: str | None = None) -> dict:
        status, body = self.admin("GET", f"/stripe-customers/{cus_id}" + (f"?account={account}" if account else ""))
        assert status == 200, (status, body)
        return body

    def events(self) -> list[dict]:
        status, body = self.admin("GET", "/events?limit=1000")
        assert status == 200, body
        return body["events"]

    def settle(self) -> list[dict]:
        """Deliver every event the fake Stripe has sent since the last time, and wait until they are applied."""
        self.deliver(self.fake.take_events())
        return self.wait_settled()

    def wait_settled(self, timeout: float = 30, *, allow_waiting: bool = False) -> list[dict]:
        """Poll the ledger until no event is received/processing (nor waiting, unless allowed)."""
        busy = UNSETTLED if allow_waiting else UNSETTLED + ("waiting",)
        deadline = time.time() + timeout
        while True:
            events = self.events()
            pending = [e for e in events if e["status"] in busy]
            if not pending:
                return events
            if time.time() > deadline:
                raise AssertionError(f"events not settled after {timeout}s: {pending[:5]}")
            time.sleep(0.2)


@contextlib.contextmanager
def running_service(prefix: str, *, database_url: str = DATABASE_URL, redis_url: str = REDIS_URL,
                    env: dict | None = None):
    """The real service (migrated, emptied; web and a worker running) against a fake Stripe of its own;
    every process stopped at the end. Logs under a new temporary folder named by `prefix`."""
    import redis

    from tests.support import truncate_all

    logdir = Path(tempfile.mkdtemp(prefix=prefix))
    with FakeStripeServer() as fake_server:
        svc = Service(fake_server, logdir, database_url=database_url, redis_url=redis_url, env=env)
        try:
            done = svc.cli("migrate")
            assert done.returncode == 0, done.stderr
            again = svc.cli("migrate")
            assert again.returncode == 0 and "up to date" in again.stdout, (again.stdout, again.stderr)
            truncate_all(database_url)
            redis.Redis.from_url(redis_url).flushdb()
            svc.start_web()
            svc.start_worker()
            yield svc
        finally:
            svc.stop_all()
