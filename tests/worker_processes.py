"""Helpers for tests that run a real `teachery-sync worker` process: start it, stop it, watch it. (To keep
such a worker busy, a test holds one of its requests in the fake Stripe: `stripe_api.hold(path)`.)"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support import NO_STRIPE, ROOT, TEST_DATABASE_URL, TEST_REDIS_URL


def start_worker(log_path: Path, *args: str, stripe_url: str = NO_STRIPE,
                 redis_url: str = TEST_REDIS_URL) -> subprocess.Popen:
    """`teachery-sync worker ARGS` in its own process group, its output in log_path."""
    env = {**os.environ, "DATABASE_URL": TEST_DATABASE_URL, "REDIS_URL": redis_url, "STRIPE_API_KEY": "sk_test_w",
           "STRIPE_API_BASE": stripe_url, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "teachery_sync.cli", "worker", *args], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def kill_group(proc: subprocess.Popen, sig=signal.SIGKILL) -> None:
    """Signal the process and its group (its second worker included) and wait; SIGKILL if it lingers."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def children_of(pid: int) -> list[int]:
    """The pids whose parent is pid."""
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry))
    return kids


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(predicate, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
