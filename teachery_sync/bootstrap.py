"""The one composition root: builds the pool, the queue and the Stripe client from settings."""
from __future__ import annotations

from dataclasses import dataclass

import redis
from psycopg_pool import ConnectionPool
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


def build(settings: Settings | None = None, *, pool_size: int = 8) -> Services:
    """Everything a process needs, from settings. Connections open lazily, after fork."""
    settings = settings or Settings.from_env()
    conn = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=10)
    return Services(
        settings=settings,
        pool=make_pool(settings.database_url, max_size=pool_size),
        redis=conn,
        queue=Queue(QUEUE_NAME, connection=conn),
        stripe=StripeApi(settings.stripe_api_key, settings.stripe_api_base,
                         max_network_retries=settings.stripe_network_retries),
    )
