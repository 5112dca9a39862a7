"""A few commands run as one group, like honcho or foreman: output prefixed with each one's name;
when one of them stops, or on SIGINT/SIGTERM/SIGHUP, all are stopped (SIGTERM, then SIGKILL after a grace
period). Shutdown completes even when the terminal or pipe reading the output is gone."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, kill, the terminal closed
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Run in a child before exec (preexec_fn): on Linux, SIGTERM it when its parent dies, so a
    `dev` killed with SIGKILL leaves no web server, worker or Redis behind."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class QuietWhenClosed:
    """A text stream that goes quiet once whatever reads it has gone (Ctrl-C on `make dev | tee`),
    instead of raising BrokenPipeError in the middle of a shutdown."""

    def __init__(self, stream=None):
        self._stream = stream or sys.stdout
        self._lock = threading.Lock()
        self.closed = False

    def line(self, text: str) -> None:
        with self._lock:
            if self.closed:
                return
            try:
                self._stream.write(text.rstrip("\n") + "\n")
                self._stream.flush()
            except (OSError, ValueError):
                self.closed = True


@dataclass
class _Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen | None = None
    reader: threading.Thread | None = field(default=None, repr=False)


class Supervisor:
    """Start with add(), then run() until one child stops or a stop signal (STOP_SIGNALS) arrives."""

    def __init__(self, out: QuietWhenClosed, grace_seconds: float = 10.0):
        self.out = out
        self.grace_seconds = grace_seconds
        self._children: list[_Child] = []
        self._stop_requested = threading.Event()

    def add(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self._children.append(_Child(name, argv, env))

    def run(self) -> int:
        """0 when stopped by SIGINT/SIGTERM; else the status of the child that stopped first (1 if 0)."""
        previous = {s: signal.signal(s, self._on_signal) for s in STOP_SIGNALS}
        width = max(len(c.name) for c in self._children)
        try:
            for child in self._children:
                self._start(child, width)
            first_stopped = self._wait_for_stop()
        finally:
            self._stop_all()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if first_stopped is None:
            return 0
        self._say(f"{first_stopped.name} stopped on its own (status {first_stopped.process.returncode}); "
                  "stopped the others", width)
        return first_stopped.process.returncode or 1

    def _on_signal(self, signum, frame):
        self._stop_requested.set()

    def _start(self, child: _Child, width: int) -> None:
        # Own session: the terminal's Ctrl-C reaches only us, and we stop the children in order.
        child.process = subprocess.Popen(child.argv, env=child.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=die_with_parent)
        child.reader = threading.Thread(target=self._relay, args=(child, width), daemon=True)
        child.reader.start()
        self._say(f"{child.name} started (pid {child.process.pid})", width)

    def _relay(self, child: _Child, width: int) -> None:
        for raw in child.process.stdout:
            # No time of our own: the children's log lines carry their timestamp (teachery_sync/logs.py).
            self.out.line(f"{child.name:<{width}} | " + raw.decode("utf-8", "replace").rstrip("\n"))

    def _wait_for_stop(self) -> _Child | None:
        while not self._stop_requested.wait(0.1):
            for child in self._children:
                if child.process.poll() is not None:
                    return child
        return None

    def _stop_all(self) -> None:
        running = [c for c in self._children if c.process is not None and c.process.poll() is None]
        for child in running:
            _signal_group(child.process, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_seconds
        for child in running:
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(child.process, signal.SIGKILL)
                child.process.wait()
        for child in self._children:
            if child.reader is not None:
                child.reader.join(timeout=2)

    def _say(self, text: str, width: int) -> None:
        self.out.line(f"{'dev':<{width}} | {text}")


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)  # the child leads its own session, so its group has its pid
    except ProcessLookupError:
        pass
