"""`teachery-sync worker`: an event worker in this process and, when it serves the reconciliation queue
too, a second worker process for that queue, so that a long reconciliation run never holds up events.

The second process is started with PR_SET_PDEATHSIG set to SIGKILL: when this one dies, even by
SIGKILL, it dies at once. (With SIGTERM it began RQ's warm shutdown, finishing a reconciliation run that
could last minutes, and was seen alive long after, taking the next worker's jobs.) A run it held is
resumed by the next worker, from its cursor. It is started again when it stops on its own; this
process's own stop (SIGTERM, SIGINT) stops it gracefully first (`SecondWorker.stop`). `--burst` drains
both, and exits non-zero when the second one did.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import structlog
from rq import Queue

from teachery_sync import error_reporting
from teachery_sync.embedded import die_with_parent
from teachery_sync.metrics_dir import MetricsDir, open_metrics_dir
from workers import jobs
from workers.queueing import RECONCILIATION_QUEUE_NAME
from workers.services import Services
from workers.worker import SWEEP_SECONDS, EventWorker, patient, sweep_stranded

log = structlog.get_logger(__name__)

STOP_GRACE_SECONDS = 10  # after SIGTERM (warm: finish the job) and again after a second one (cold)
RESTART_DELAYS = (2, 60)  # seconds before starting it again: doubling while it keeps stopping, at most 60
STEADY_SECONDS = 60  # a run this long resets the delay


class WorkerError(RuntimeError):
    """The worker cannot start: a one-line reason."""


class SecondWorker:
    """The reconciliation worker process, supervised: started again when it stops on its own."""

    def __init__(self, queue_names: list[str], burst: bool, metrics: MetricsDir):
        self.metrics = metrics
        self.argv = [sys.executable, "-m", "teachery_sync.cli", "worker", "--supervised", "--queues",
                     ",".join(queue_names)]
        self.argv += ["--burst"] if burst else []
        self.burst = burst
        self.process: subprocess.Popen | None = None
        self._preexec = die_with_parent(signal.SIGKILL)
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> SecondWorker:
        self._spawn()
        if not self.burst:
            self._watcher = threading.Thread(target=self._watch, name="second-worker", daemon=True)
            self._watcher.start()
        return self

    def _spawn(self) -> None:
        self.process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, preexec_fn=self._preexec)
        log.info("reconciliation worker started", pid=self.process.pid)

    def _watch(self) -> None:
        """Start it again when it stops on its own. Runs until stop(): the children it starts get their
        parent-death signal when this thread ends."""
        delay = RESTART_DELAYS[0]
        while not self._stopping.is_set():
            started = time.monotonic()
            status = self.process.wait()
            self.metrics.process_dead(self.process.pid)
            if self._stopping.is_set():
                return
            delay = RESTART_DELAYS[0] if time.monotonic() - started > STEADY_SECONDS else delay
            log.warning("reconciliation worker stopped on its own; starting it again", status=status,
                        in_seconds=delay)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, RESTART_DELAYS[1])
            self._spawn()

    def wait(self) -> int:
        """In --burst: until it has drained its queue; its exit status."""
        return self.process.wait()

    def stop(self) -> int:
        """SIGTERM (RQ finishes the job in progress), a second SIGTERM (RQ stops it; a run ends failed
        with that reason), then SIGKILL."""
        self._stopping.set()
        for sig in (signal.SIGTERM, signal.SIGTERM, signal.SIGKILL):
            if self.process.poll() is not None:
                break
            self.process.send_signal(sig)
            try:
                self.process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                continue
        return self.process.wait()


def run(services: Services, queue_names: list[str], burst: bool) -> int:
    """Work on `queue_names` (events first) until stopped, or until drained with `burst`; exit status.
    The jobs and the worker's sweep get `services` from here (workers/jobs.py builds none of its own).
    Counts into the service's metrics directory; errors go to Sentry when SENTRY_DSN is set."""
    metrics = open_metrics_dir(services.settings.metrics_dir)
    error_reporting.start(services.settings)
    mine = [n for n in queue_names if n != RECONCILIATION_QUEUE_NAME] or queue_names
    services = patient(services, ",".join(mine))  # from here on a Redis outage is waited out, never fatal
    jobs.install(services)
    second = None
    if mine != queue_names:
        second = SecondWorker([RECONCILIATION_QUEUE_NAME], burst, metrics).start()
    try:
        try:
            sweep_stranded(services, older_than_seconds=0 if burst else 60)
        except Exception as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise WorkerError(f"cannot read the event ledger: {reason}") from None
        # worker_ttl sets how long RQ blocks waiting for a job (ttl - 15 s), hence how often maintenance
        # (and with it our sweep) runs when idle. No RQ scheduler: see workers/queueing.py.
        worker = EventWorker([Queue(n, connection=services.redis) for n in mine], connection=services.redis,
                             maintenance_interval=SWEEP_SECONDS, worker_ttl=SWEEP_SECONDS + 15)
        worker.services = services
        worker.work(burst=burst, logging_level="INFO")
    finally:
        status = 0
        if second is not None:
            status = second.wait() if burst else second.stop()
    return status if burst else 0

