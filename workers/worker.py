"""The RQ worker: jobs run in this process (one pooled connection per process, no fork per job)."""
from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time

import redis
import structlog
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import Queue, SimpleWorker, worker_registration

from domain import ledger
from workers import draining, reconciliation
from workers.queueing import QUEUE_NAME, enqueue_attempt, ensure_drain
from workers.services import Services

log = structlog.get_logger(__name__)


def sweep_stranded(services: Services, *, older_than_seconds: int = 60) -> int:
    """Enqueue the events a job should take now: received ones no job picked up (stored while
    Redis was down, or their worker was killed), and waits whose retry time has come.
    Safe to run any time: applying is idempotent and job ids are unique per attempt."""
    with services.pool.connection() as conn:
        rows = ledger.stranded(conn, older_than_seconds=older_than_seconds)
    received = False
    for event_id, status, attempts in rows:
        if status == "received":
            received = True
        else:
            enqueue_attempt(services.queue, event_id, attempts + 1)
    if received:
        ensure_drain(services.queue)  # one job drains them all
    if rows:
        log.info("enqueued events due for an attempt", count=len(rows))
    resumed = reconciliation.requeue_abandoned(services)
    if resumed:
        log.warning("reconciliation runs left running by a stopped worker queued again, to resume", runs=resumed)
    lost = reconciliation.fail_lost(services)
    if lost:
        log.warning("queued reconciliation runs whose job was lost ended as failed", runs=lost)
    return len(rows)


SWEEP_SECONDS = 10  # how often an idle worker sweeps (RQ runs maintenance between dequeue waits)


REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class WaitForRedis(Retry):
    """A redis-py retry policy that retries every command until Redis answers again, however long that
    takes, with one log line when Redis goes away and one when it is back.

    Why: RQ 3.0 retries only its dequeue; a Redis error anywhere else (the job's heartbeat in
    `_finalize_success`, `check_for_suspension`, the maintenance tasks) ends `work()`, and with it the
    worker. Waiting below RQ, in the connection, covers all of them. Nothing is lost meanwhile: an
    event's changes are committed in PostgreSQL before RQ records the job, and the ledger and the
    sweep enqueue whatever is left unapplied. `stop()` makes commands fail at once again, so that a
    worker asked to stop during an outage can stop."""

    def __init__(self, label: str = "", max_sleep: float = 5.0):
        self.label = label  # says whose connection it is in the log lines
        super().__init__(backoff=NoBackoff(), retries=-1, supported_errors=REDIS_DOWN + (socket.timeout,))
        self.max_sleep = max_sleep
        self.outages = 0  # how many times Redis went away (the worker registers itself again after one)
        self._down_since: float | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def __deepcopy__(self, memo):  # redis-py copies the policy into every connection: share this one
        return self

    def stop(self) -> None:
        self._stopping.set()

    def call_with_retry(self, do, fail, is_retryable=None, with_failure_count=False):
        failures = 0
        while True:
            try:
                result = do()
            except self._supported_errors as error:
                if is_retryable and not is_retryable(error):
                    raise
                failures += 1
                fail(error, failures) if with_failure_count else fail(error)
                if self._stopping.is_set():
                    raise
                if failures > 1:  # a first failure is often a pooled connection that a restart closed
                    self._went_away(error)
                    time.sleep(min(self.max_sleep, 0.25 * 2 ** failures))
                continue
            if failures > 1:
                self._came_back()
            return result

    # Only the main thread (the one that runs jobs) says so: RQ's pubsub thread also waits, silently, and
    # a read on a connection it just lost can "succeed" with nothing to read.
    def _went_away(self, error: Exception) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        with self._lock:
            if self._down_since is not None:
                return
            self._down_since = time.monotonic()
            self.outages += 1
        log.warning("Redis unreachable: waiting for it; no event is lost (the ledger keeps them)",
                    worker=self.label, error=" ".join(str(error).split()) or type(error).__name__)

    def _came_back(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        with self._lock:
            if self._down_since is None:
                return
            down, self._down_since = time.monotonic() - self._down_since, None
        log.warning("Redis reachable again", worker=self.label, down_seconds=round(down, 1))


def patient(services: Services, label: str = "") -> Services:
    """The services with a Redis client whose commands wait out a Redis outage (see WaitForRedis)."""
    client = redis.Redis.from_url(services.settings.redis_url, socket_connect_timeout=5, socket_timeout=10,
                                  retry=WaitForRedis(label))
    return dataclasses.replace(services, redis=client, queue=Queue(QUEUE_NAME, connection=client))


class EventWorker(SimpleWorker):
    """SimpleWorker (jobs run in this process, on its connection pool) that sweeps the ledger for
    events due for an attempt during RQ's maintenance, every SWEEP_SECONDS. On a connection whose
    retry policy is WaitForRedis, it waits out Redis outages instead of exiting."""

    services: Services | None = None  # given by the worker command: the sweep needs them
    _outages_seen = 0

    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        if self.services is not None:
            try:
                sweep_stranded(self.services)
            except Exception as exc:  # a sweep is best effort; the next one tries again
                log.warning("sweep failed", error=str(exc))

    @property
    def _waiting_policy(self) -> WaitForRedis | None:
        policy = self.connection.connection_pool.connection_kwargs.get("retry")
        return policy if isinstance(policy, WaitForRedis) else None

    def heartbeat(self, timeout=None, pipeline=None):
        super().heartbeat(timeout, pipeline)
        policy = self._waiting_policy
        if pipeline is None and policy is not None and policy.outages != self._outages_seen:
            self._outages_seen = policy.outages
            self._register_again()

    def _register_again(self) -> None:
        """After an outage longer than the worker key's TTL, Redis has dropped this worker's key (and RQ
        would list a husk): write it and the registration again."""
        with self.connection.pipeline() as pipe:
            pipe.hset(self.key, mapping=self.serialize())
            pipe.hset(self.key, "state", self.get_state())
            worker_registration.register(self, pipe)
            pipe.expire(self.key, self.worker_ttl + 60)
            pipe.execute()

    def request_stop(self, signum, frame):
        draining.stop_requested.set()  # a drain in progress ends after its batch
        policy = self._waiting_policy
        if policy is not None:
            policy.stop()  # stopping: Redis commands fail at once instead of waiting for Redis
        super().request_stop(signum, frame)

    def set_shutdown_requested_date(self):
        with contextlib.suppress(*REDIS_DOWN):  # only a note for RQ's dashboard; the job in progress still finishes
            super().set_shutdown_requested_date()

    def teardown(self):
        try:
            super().teardown()
        except REDIS_DOWN as exc:
            log.warning("stopping while Redis is unreachable: RQ forgets this worker when its key expires",
                        error=str(exc))
