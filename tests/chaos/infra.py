"""The chaos soak's own PostgreSQL and Redis: started from their binaries on free ports in a temporary
directory, stopped and started again by the fault injectors, never the machine's shared servers.

PostgreSQL: `initdb` + `pg_ctl` (Debian's binaries under /usr/lib/postgresql/<n>/bin unless PG_BIN says
otherwise), trust authentication on 127.0.0.1 only, `fsync` on (as in production: a kill must not lose a
committed event). As root, the server runs as the `postgres` user (PostgreSQL refuses to run as root).

Redis: `redis-server` with the persistence a production Redis for RQ should have: the append-only file
with `appendfsync everysec` (a crash loses at most the last second of writes, at no cost per command;
`always` would fsync every RQ call), plus RDB snapshots left off (the AOF is what a restart reads).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import redis

from teachery_sync.embedded import free_port


def _pg_bin() -> Path:
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    if not versions:
        raise RuntimeError("no PostgreSQL binaries (initdb, pg_ctl): install postgresql or set PG_BIN")
    return versions[-1].parent


class OwnPostgres:
    """A PostgreSQL cluster of the soak's own: start(), stop(mode) with pg_ctl's fast or immediate mode."""

    def __init__(self, root: Path, database: str = "teachery_chaos"):
        self.bin = _pg_bin()
        self.root = root
        self.data = root / "pgdata"
        self.log = root / "postgres.log"
        self.port = free_port()
        self.database = database
        self.url = f"postgresql://chaos@127.0.0.1:{self.port}/{database}"
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # postgres refuses root: run it as the postgres user
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(root, "postgres")

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([*self.as_user, *args], cwd=self.root, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, check=True)

    def init(self) -> OwnPostgres:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "chaos", "--auth=trust", "-E", "UTF8",
                  "--no-instructions")
        self.start()
        with psycopg.connect(f"postgresql://chaos@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')
        return self

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c max_connections=200 "
                   "-c fsync=on -c synchronous_commit=on")
        self._run(str(self.bin / "pg_ctl"), "start", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-o", options, timeout=90)

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop -m fast (sessions ended, a clean checkpoint) or immediate (a crash: recovery at start)."""
        self._run(str(self.bin / "pg_ctl"), "stop", "-D", str(self.data), "-m", mode, "-w", "-t", "60", timeout=90)

    def running(self) -> bool:
        done = subprocess.run([*self.as_user, str(self.bin / "pg_ctl"), "status", "-D", str(self.data)],
                              capture_output=True, stdin=subprocess.DEVNULL)
        return done.returncode == 0

    def close(self) -> None:
        if self.data.exists() and self.running():
            with contextlib.suppress(subprocess.SubprocessError):
                self.stop("immediate")


class OwnRedis:
    """A redis-server of the soak's own, with AOF (appendfsync everysec): start(), stop(kill=…)."""

    def __init__(self, root: Path):
        self.binary = shutil.which("redis-server") or "redis-server"
        self.root = root
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout: float = 15) -> None:
        with open(self.root / f"redis-{self.starts}.log", "wb") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
                 "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
                 "--protected-mode", "no"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.starts += 1
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"redis-server exited; see {self.root}"
            with contextlib.suppress(redis.exceptions.RedisError):
                # Wait until the AOF is loaded (a restarted server answers LOADING meanwhile).
                if client.ping() and client.info("persistence").get("loading") == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self, *, kill: bool = False) -> None:
        """SIGKILL (a crash: at most the last second of writes lost) or SIGTERM (a clean shutdown)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def close(self) -> None:
        self.stop(kill=True)


def temp_root() -> Path:
    """A temporary directory the postgres user can enter."""
    root = Path(tempfile.mkdtemp(prefix="teachery-chaos-"))
    root.chmod(0o755)
    return root
