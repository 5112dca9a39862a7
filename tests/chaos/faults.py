"""The soak's fault injectors, each counting what it did:

- `WorkerKiller`: SIGKILLs one of the `worker` processes every few seconds and starts a new one at once;
  like a process supervisor, starts again a worker that would not start while PostgreSQL or Redis was down.
- `Faults`: one fault after another, with a pause between them, in a fixed cycle: SIGKILL a gunicorn
  worker process (the master starts another); crash Redis (SIGKILL: the AOF's last second is lost) or shut
  it down cleanly, for a few seconds; stop PostgreSQL (pg_ctl -m fast, then -m immediate: a crash) for a
  few seconds; the fake Stripe answering 500, then 429, for a few seconds.

Every fault ends with what it broke running again, so stopping between faults leaves everything up.
"""
from __future__ import annotations

import collections
import contextlib
import os
import random
import signal
import threading
import time

from tests.blackbox.service import Service
from tests.chaos.infra import OwnPostgres, OwnRedis
from tests.worker_processes import children_of

# What `teachery-sync worker` says when it exits at start because PostgreSQL or Redis is down (its check
# before starting, or its first sweep of the ledger): exit status 1, leaving the restart to a supervisor.
STARTUP_ERRORS = ("error: cannot reach ", "error: cannot read the event ledger: ")

CYCLE = ("gunicorn_kill", "redis_crash", "stripe_500", "postgres_fast", "stripe_429", "redis_shutdown",
         "postgres_immediate")


class WorkerKiller(threading.Thread):
    """Keeps `count` worker processes running, as a process supervisor would (systemd, a Procfile runner):
    SIGKILLs one every `every` seconds (± half) and starts another in its place; starts again, a second
    later, a worker that exited because PostgreSQL or Redis was down when it started (STARTUP_ERRORS).
    Any other death is a crash."""

    def __init__(self, svc: Service, count: int, every: float, seed: int):
        super().__init__(daemon=True, name="worker-killer")
        self.svc, self.every = svc, every
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.kills = 0
        self.refused_to_start = 0  # exits at start while a dependency was down
        self.crashes: list[str] = []  # logs of workers that died unasked
        self.workers = [self._spawn() for _ in range(count)]

    def _spawn(self):
        proc = self.svc.spawn("worker", "worker")
        proc.log_path = self.svc.logdir / f"worker-{len(self.svc.procs) - 1}.log"
        return proc

    def run(self) -> None:
        next_kill = time.monotonic() + self.every * self.rng.uniform(0.5, 1.5)
        while not self.stop.wait(0.25):
            self.keep_running()
            if time.monotonic() >= next_kill:
                i = self.rng.randrange(len(self.workers))
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.workers[i].pid, signal.SIGKILL)
                self.workers[i].wait(timeout=10)
                self.kills += 1
                self.workers[i] = self._spawn()
                next_kill = time.monotonic() + self.every * self.rng.uniform(0.5, 1.5)

    def keep_running(self) -> None:
        """Start again each worker that exited on its own: refused to start (a dependency down), or crashed."""
        for i, proc in enumerate(self.workers):
            if proc.poll() is None:
                continue
            lines = proc.log_path.read_text().strip().splitlines()
            if proc.returncode == 1 and lines and lines[-1].startswith(STARTUP_ERRORS):
                self.refused_to_start += 1
                time.sleep(1)
            else:
                self.crashes.append(f"{proc.log_path} (exit {proc.returncode})")
            self.workers[i] = self._spawn()


class Faults(threading.Thread):
    """The other faults, one at a time, `pause` seconds apart, each lasting `outage` seconds (± a third)."""

    def __init__(self, svc: Service, pg: OwnPostgres, rds: OwnRedis, *, pause: float, outage: float, seed: int,
                 log=print):
        super().__init__(daemon=True, name="faults")
        self.svc, self.pg, self.rds = svc, pg, rds
        self.pause, self.outage = pause, outage
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.done: collections.Counter = collections.Counter()
        self.windows: list[tuple[str, float, float]] = []  # (fault, start, end), time.monotonic()
        self.errors: list[str] = []
        self.log = log

    def run(self) -> None:
        n = 0
        while not self.stop.wait(self.pause):
            fault = CYCLE[n % len(CYCLE)]
            n += 1
            start = time.monotonic()
            try:
                getattr(self, fault)(self.outage * self.rng.uniform(0.67, 1.33))
            except Exception as exc:  # a fault that could not be made is reported, not fatal
                self.errors.append(f"{fault}: {type(exc).__name__}: {exc}")
            self.windows.append((fault, start, time.monotonic()))
            self.done[fault] += 1
            self.log(f"  fault {fault} ({time.monotonic() - start:.1f}s)")

    def gunicorn_kill(self, _seconds: float) -> None:
        victims = children_of(self.svc.web.pid)
        assert victims, "gunicorn has no worker process"
        os.kill(self.rng.choice(victims), signal.SIGKILL)

    def redis_crash(self, seconds: float) -> None:
        self.rds.stop(kill=True)
        time.sleep(seconds)
        self.rds.start()

    def redis_shutdown(self, seconds: float) -> None:
        self.rds.stop(kill=False)
        time.sleep(seconds)
        self.rds.start()

    def postgres_fast(self, seconds: float) -> None:
        self.pg.stop("fast")
        time.sleep(seconds)
        self.pg.start()

    def postgres_immediate(self, seconds: float) -> None:
        self.pg.stop("immediate")
        time.sleep(seconds)
        self.pg.start()

    def stripe_500(self, seconds: float) -> None:
        self.svc.fake.fail_for(seconds, 500)
        time.sleep(seconds)

    def stripe_429(self, seconds: float) -> None:
        self.svc.fake.fail_for(seconds, 429)
        time.sleep(seconds)
