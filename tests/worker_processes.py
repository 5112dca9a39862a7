"""Helpers for tests that run a real `teachery-sync worker` process: start it, and a Stripe API that holds
one request until the test lets it go (so that the worker is busy for as long as the test needs)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.blackbox.conftest import children_of  # noqa: F401  (for the tests that import it from here)
from tests.support import ROOT, TEST_DATABASE_URL, TEST_REDIS_URL


class HeldStripe:
    """A Stripe API on 127.0.0.1: GET requests whose path is `held_path` wait until release(), then get
    `answer`; other lists answer empty, other objects 404."""

    def __init__(self, held_path: str, answer: dict):
        self.asked = threading.Event()
        self._released = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                path = self.path.split("?")[0]
                if path == held_path:
                    outer.asked.set()
                    outer._released.wait(120)
                    self._send(200, answer)
                elif path.strip("/").count("/") == 1:
                    self._send(200, {"object": "list", "data": [], "has_more": False, "url": path})
                else:
                    self._send(404, {"error": {"type": "invalid_request_error", "message": "No such object"}})

            def _send(self, status: int, body: dict):
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def release(self) -> None:
        self._released.set()

    def close(self) -> None:
        self.release()
        self.server.shutdown()


def start_worker(log_path: Path, *args: str, stripe_url: str = "http://127.0.0.1:9",
                 redis_url: str = TEST_REDIS_URL) -> subprocess.Popen:
    """`teachery-sync worker ARGS` in its own process group, its output in log_path."""
    env = {**os.environ, "DATABASE_URL": TEST_DATABASE_URL, "REDIS_URL": redis_url, "STRIPE_API_KEY": "sk_test_w",
           "STRIPE_API_BASE": stripe_url, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "teachery_sync.cli", "worker", *args], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process and its group (its second worker included)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(10)


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
