"""`teachery-sync clock`: enqueues the scheduled reconciliation runs (workers/scheduled.py) at their
times, with RQ's own CronScheduler, on the reconciliation queue that the worker's second process serves.

One clock is enough; a second one (a rolling deploy, two hosts) enqueues every slot a second time, and
the job then finds its slot taken and does nothing (see workers/scheduled.py). The clock runs no job
itself and touches no database: it only needs Redis, and it waits out a Redis outage like the worker.
"""
from __future__ import annotations

import os
import socket
import time

import redis
import structlog
from rq.cron import CronScheduler
from rq.exceptions import StopRequested

from domain.errors import first_line
from domain.settings import Settings
from domain.times import iso
from workers import jobs
from workers.queueing import RECONCILIATION_QUEUE_NAME
from workers.scheduled import SCHEDULES
from workers.worker import REDIS_DOWN, WaitForRedis

log = structlog.get_logger(__name__)

JOB_TIMEOUT = 6 * 3600  # seconds: a full run of every account may take hours; RQ ends the job after this
RESULT_TTL = 24 * 3600
FAILURE_TTL = 30 * 24 * 3600


def schedules(settings: Settings) -> dict[str, str]:
    """The schedules that are on: name → cron expression (UTC)."""
    configured = {"nightly": settings.reconcile_schedule, "weekly": settings.reconcile_full_schedule}
    return {name: cron for name, cron in configured.items() if cron}


class Clock(CronScheduler):
    """RQ's CronScheduler, saying in our log format what it enqueued; stopped by SIGTERM / SIGINT (RQ's
    handlers) even while it waits for Redis."""

    def __init__(self, connection, name: str, waiting: WaitForRedis | None = None):
        super().__init__(connection=connection, name=name)
        self.waiting = waiting
        self.stopping = False

    def enqueue_jobs(self):
        enqueued = super().enqueue_jobs()
        for cron_job in enqueued:
            log.info("scheduled reconciliation enqueued", schedule=cron_job.args[0], queue=cron_job.queue_name,
                     next_at=iso(cron_job.next_enqueue_time))
        return enqueued

    def _request_stop(self, signum, frame):
        self.stopping = True
        if self.waiting is not None:
            self.waiting.stop()  # Redis commands fail at once from now on, so the shutdown cannot hang
        super()._request_stop(signum, frame)


def waiting_redis(url: str) -> redis.Redis:
    """A Redis client whose commands wait out an outage (workers/worker.py WaitForRedis)."""
    return redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10, retry=WaitForRedis("clock"))


def build(settings: Settings, redis_client) -> Clock:
    """A clock with the schedules that are on, registered."""
    # RQ's CronJob reads a cron expression in the process's local time zone; ours are UTC.
    os.environ["TZ"] = "UTC"
    time.tzset()
    policy = redis_client.connection_pool.connection_kwargs.get("retry")
    clock = Clock(redis_client, name=f"teachery-clock:{socket.gethostname()}:{os.getpid()}",
                  waiting=policy if isinstance(policy, WaitForRedis) else None)
    for name, cron in schedules(settings).items():
        clock.register(jobs.run_scheduled, RECONCILIATION_QUEUE_NAME, args=(name, cron), cron=cron,
                       job_timeout=JOB_TIMEOUT, result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL,
                       name=f"teachery-reconcile-{name}")
    return clock


def run(settings: Settings, redis_client) -> None:
    """Enqueue the scheduled runs at their times until SIGTERM or SIGINT."""
    clock = build(settings, redis_client)
    on = {cron_job.args[0]: {"cron": cron_job.cron, "next_at": iso(cron_job.next_enqueue_time)}
          for cron_job in clock.get_jobs()}
    off = [name for name in SCHEDULES if name not in on]
    try:
        try:
            # RQ's handlers (SIGTERM, SIGINT → StopRequested) from here on, before "started" is said;
            # start() installs them again, before its loop's `try`: a signal in between is caught below.
            clock._install_signal_handlers()
            if on:
                log.info("clock started", schedules=on, off=off, queue=RECONCILIATION_QUEUE_NAME, time_zone="UTC")
            else:
                log.warning("clock started with every schedule off (RECONCILE_SCHEDULE and "
                            "RECONCILE_FULL_SCHEDULE are empty): it enqueues nothing")
            clock.start()
        except StopRequested:
            clock.register_death()
    except REDIS_DOWN as exc:
        if not clock.stopping:
            raise
        log.warning("clock stopped while Redis was unreachable: its entry in RQ's registry expires by itself",
                    error=first_line(exc))
        return
    log.info("clock stopped")
