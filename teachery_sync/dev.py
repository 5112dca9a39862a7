"""`teachery-sync dev`: the whole service on one machine, in one process tree.

Embedded PostgreSQL and Redis when DATABASE_URL / REDIS_URL are unset (data kept under the dev
directory), migrations, then the Procfile's web, worker and clock under honcho until Ctrl-C or SIGTERM,
after which everything is stopped in order: web, worker and clock, then Redis, then PostgreSQL.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import redis
from honcho.environ import parse_procfile
from honcho.manager import SIGNALS, SYSTEM_PRINTER_NAME, Manager
from honcho.printer import Printer
from honcho.process import Popen, Process

from domain.db import DatabaseUnavailable, dsn_problem, redact, redact_url, redis_url_problem
from domain.migrate import migrate
from teachery_sync import dev_env
from teachery_sync.embedded import (
    DEFAULT_REDIS_PORT,
    EmbeddedPostgres,
    EmbeddedRedis,
    EmbeddedServerError,
    die_with_parent,
    port_is_free,
)
from teachery_sync.metrics_dir import open_metrics_dir
from workers import telemetry

PROCFILE = Path(__file__).resolve().parent.parent / "Procfile"
PROCESSES = ("web", "worker", "clock")  # the Procfile's long-running lines (dev applies the migrations itself)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, kill, the terminal closed


class DevError(Exception):
    """The dev stack cannot start; the message says what to do."""


@dataclass(frozen=True)
class DevOptions:
    dev_dir: Path = Path(".dev")
    host: str = "127.0.0.1"
    port: int = 8000
    web_workers: int = 1
    redis_port: int = DEFAULT_REDIS_PORT
    ready_timeout: float = 60.0


@dataclass
class Stack:
    """What `dev` started itself, so that it stops exactly that."""
    postgres: EmbeddedPostgres
    redis: EmbeddedRedis

    def stop(self) -> None:
        self.redis.stop()
        self.postgres.stop()


def run(environ: Mapping[str, str], options: DevOptions, out: DevPrinter | None = None) -> int:
    """Run the stack until interrupted; returns the exit status."""
    started = time.monotonic()
    out = out or DevPrinter()
    echo = out.line
    dev_dir = options.dev_dir.resolve()
    dev_dir.mkdir(parents=True, exist_ok=True)
    if not port_is_free(options.port, options.host):
        raise DevError(f"port {options.port} on {options.host} is already in use "
                       "(another `teachery-sync dev`?); stop it or pass --port")
    commands = _procfile_commands()
    stack = Stack(EmbeddedPostgres(dev_dir / "pg"), EmbeddedRedis(dev_dir / "redis", options.redis_port))
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    # Until honcho takes over: SIGTERM and SIGHUP stop the setup as Ctrl-C (SIGINT) does.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_interrupt)
    try:
        env, embedded = _environment(environ, dev_dir, stack, echo)
        _check_redis(env["REDIS_URL"])
        _migrate(env["DATABASE_URL"], echo)
        base = f"http://{_display_host(options.host)}:{options.port}"
        env[dev_env.BASE_URL_KEY] = base
        env[dev_env.WEBHOOK_URL_KEY] = f"{base}/webhooks/stripe"
        env_file = dev_env.write_env(dev_dir, {k: env[k] for k in _SHARED_KEYS}, embedded)
        # The processes' counters: dev holds the directory while it runs (emptied at its start, never by
        # a child that starts again); PROMETHEUS_MULTIPROC_DIR when set, else one in the dev directory.
        env[METRICS_DIR_KEY] = str(Path(environ.get(METRICS_DIR_KEY) or dev_dir / "metrics").resolve())
        open_metrics_dir(env[METRICS_DIR_KEY])
        _print_banner(echo, base, env, env_file)
        return _run_processes(commands, environ, env, options, base, started, out)
    except KeyboardInterrupt:
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        stack.stop()
        echo("dev: stopped")


METRICS_DIR_KEY = telemetry.ENVIRONMENT_KEY
_SHARED_KEYS = ("DATABASE_URL", "REDIS_URL", "STRIPE_WEBHOOK_SECRET", "ADMIN_TOKEN", dev_env.BASE_URL_KEY,
                dev_env.WEBHOOK_URL_KEY)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _environment(environ, dev_dir: Path, stack: Stack, echo) -> tuple[dict[str, str], set[str]]:
    """The settings for the children: configured servers where given, embedded ones otherwise."""
    recorded, was_embedded = dev_env.read_env(dev_dir)
    env = dev_env.choose_secrets(dict(environ), recorded)
    embedded: set[str] = set()
    starters = {"DATABASE_URL": ("PostgreSQL", stack.postgres.start, dev_dir / "pg"),
                "REDIS_URL": ("Redis", stack.redis.start, dev_dir / "redis")}
    for key, (name, start, where) in starters.items():
        configured = environ.get(key)
        # A shell that loaded .dev/env carries the embedded server's URL: that still means "embedded".
        if configured and not (key in was_embedded and configured == recorded.get(key)):
            env[key] = configured
            echo(f"dev: using {name} from {key}")
            continue
        echo(f"dev: starting the embedded {name} ({where})…")
        try:
            env[key] = start()
        except EmbeddedServerError as exc:
            raise DevError(str(exc)) from exc
        embedded.add(key)
    return env, embedded


def _migrate(database_url: str, echo) -> None:
    if problem := dsn_problem(database_url):
        raise DevError(problem)
    try:
        applied = migrate(database_url)
    except DatabaseUnavailable as exc:
        raise DevError(" ".join(str(exc).split())) from exc  # libpq's message spans lines
    echo(f"dev: applied {len(applied)} migration(s)" if applied else "dev: database schema up to date")


def _check_redis(url: str) -> None:
    """Fail now, in one line, rather than let the worker die on its first connection."""
    if problem := redis_url_problem(url):
        raise DevError(problem)
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3).ping()
    except (redis.RedisError, ValueError) as exc:
        raise DevError(f"cannot reach Redis at {redact_url(url)}: {exc}") from exc


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


def _print_banner(echo, base: str, env: Mapping[str, str], env_file: Path) -> None:
    rows = [("console", f"{base}/admin/  (sign in with the ADMIN_TOKEN below)"),
            ("webhook URL", f"{base}/webhooks/stripe"),
            ("admin API", f"{base}/admin/api/  (Authorization: Bearer $ADMIN_TOKEN)"),
            ("STRIPE_WEBHOOK_SECRET", env["STRIPE_WEBHOOK_SECRET"]),
            ("ADMIN_TOKEN", env["ADMIN_TOKEN"]),
            ("DATABASE_URL", redact(env["DATABASE_URL"])),
            ("REDIS_URL", redact_url(env["REDIS_URL"])),
            ("settings for other shells", f"set -a; . {_relative(env_file)}; set +a")]
    width = max(len(name) for name, _ in rows)
    echo("")
    for name, value in rows:
        echo(f"  {name.ljust(width)}  {value}")
    echo("")
    echo("  try: teachery-sync trigger checkout.session.completed   (Ctrl-C stops everything)")
    echo("")


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _procfile_commands() -> dict[str, str]:
    """The Procfile's web, worker and clock command lines."""
    try:
        procfile = parse_procfile(PROCFILE.read_text()).processes
    except OSError as exc:
        raise DevError(f"cannot read {PROCFILE} ({exc.strerror}): `dev` runs from the project's folder "
                       "(pip install -e '.[dev]')") from exc
    return {name: procfile[name] for name in PROCESSES}


def _run_processes(commands: dict[str, str], environ, env: Mapping[str, str], options: DevOptions, base: str,
                   started: float, out: DevPrinter) -> int:
    """The Procfile's web, worker and clock under honcho: output prefixed per process, Ctrl-C / SIGTERM stop all.
    0 when stopped by a signal; else the status of the process that stopped first (1 if 0)."""
    child_env = {"LOG_FORMAT": "console", **environ, **{k: env[k] for k in (*_SHARED_KEYS, METRICS_DIR_KEY)},
                 "PYTHONUNBUFFERED": "1",
                 "PORT": str(options.port), "WEB_HOST": options.host, "WEB_CONCURRENCY": str(options.web_workers),
                 # the teachery-sync of the Python running dev, whatever the shell's PATH says
                 "PATH": os.pathsep.join([str(Path(sys.executable).parent), environ.get("PATH", os.defpath)])}
    manager = Manager(out)
    manager._process_ctor = DyingWithDev  # honcho has no public hook for its process class
    for name, command in commands.items():
        # exec: the command replaces honcho's shell, so that its signals and its parent-death signal reach it
        manager.add_process(name, f"exec {command}", env=child_env)
    threading.Thread(target=_announce_ready, args=(base, started, options.ready_timeout, out.line),
                     daemon=True).start()
    signal.signal(signal.SIGHUP, lambda signum, frame: os.kill(os.getpid(), signal.SIGTERM))  # honcho: INT, TERM
    manager.loop()
    if manager.returncode in {s["rc"] for s in SIGNALS.values()}:
        return 0
    return manager.returncode or 1


class DyingWithDev(Process):
    """honcho's process, stopped even when `dev` is killed with SIGKILL: the relay process honcho forks
    for it gets SIGKILL when dev dies, and the command the relay starts gets SIGTERM when the relay dies."""

    def run(self, events=None, ignore_signals=False):
        if kill_me := die_with_parent(signal.SIGKILL):
            kill_me()
        self._child_ctor = partial(Popen, preexec_fn=die_with_parent())
        super().run(events, ignore_signals)


class DevPrinter(Printer):
    """honcho's printer, as `name | line` without honcho's clock (the children's log lines carry their time),
    `dev` for honcho's own lines; it goes quiet once whatever reads the output has gone (Ctrl-C on
    `make dev | tee`) instead of raising BrokenPipeError in the middle of a shutdown."""

    def __init__(self, output=None):
        super().__init__(output or sys.stdout, colour=False)
        self._lock = threading.Lock()
        self.closed = False

    def write(self, message) -> None:
        name = "dev" if message.name == SYSTEM_PRINTER_NAME else message.name
        data = message.data.decode("utf-8", "replace") if isinstance(message.data, bytes) else message.data
        for text in data.splitlines():
            self.line(f"{name:<{self.width}} | {text}")

    def line(self, text: str) -> None:
        with self._lock:
            if self.closed:
                return
            try:
                self.output.write(text.rstrip("\n") + "\n")
                self.output.flush()
            except (OSError, ValueError):
                self.closed = True


def _announce_ready(base: str, started: float, timeout: float, echo) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as response:
                if response.status == 200:
                    echo(f"dev: ready in {time.monotonic() - started:.1f}s at {base}")
                    return
        except OSError:
            pass
        time.sleep(0.2)
    echo(f"dev: {base}/readyz did not answer 200 within {timeout:.0f}s; see the output above")
