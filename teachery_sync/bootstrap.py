"""The one composition root: builds the pool, the queue and the Stripe client from settings."""
from __future__ import annotations

from dataclasses import dataclass

import redis
from psycopg_pool import ConnectionPool
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import Queue

from domain.db import make_pool
from domain.settings import Settings
from workers.queueing import QUEUE_NAME
from workers.stripe_api import StripeApi


@dataclass
class Services:
    settings: Settings
    pool: ConnectionPool
    redis: redis.Redis
    queue: Queue
    stripe: StripeApi

    def __repr__(self) -> str:
        # The default would spell out every field; Settings' own repr masks its secrets.
        return f"Services(settings={self.settings!r}, queue={self.queue.name!r}, stripe={self.stripe!r})"

    def open(self) -> "Services":
        if self.pool.closed:
            self.pool.open(wait=False)
        return self

    def close(self) -> None:
        self.pool.close()
        self.redis.close()


def build(settings: Settings | None = None, *, pool_size: int = 8, web: bool = False) -> Services:
    """Everything a process needs, from settings. Connections open lazily, after fork.

    web: a request must fail fast (503) when PostgreSQL or Redis is down, never hold its thread:
    a fail-fast pool (domain/db.py) and short Redis timeouts.
    """
    settings = settings or Settings.from_env()
    if web:  # one try of at most a second (redis-py would otherwise retry 10 times)
        options = dict(socket_connect_timeout=1, socket_timeout=1, retry=Retry(NoBackoff(), 0))
    else:
        options = dict(socket_connect_timeout=5, socket_timeout=10)
    conn = redis.Redis.from_url(settings.redis_url, **options)
    return Services(
        settings=settings,
        pool=make_pool(settings.database_url, max_size=pool_size, fail_fast=web),
        redis=conn,
        queue=Queue(QUEUE_NAME, connection=conn),
        stripe=StripeApi(settings.stripe_api_key, settings.stripe_api_base,
                         max_network_retries=settings.stripe_network_retries),
    )
