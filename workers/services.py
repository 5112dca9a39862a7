"""The services every entry point is handed (the Flask app, the RQ jobs, the worker, the CLI).

Built by the composition root (teachery_sync/bootstrap.py) and defined here, low enough that the HTTP
and RQ edges can name the type without importing the root.
"""
from __future__ import annotations

from dataclasses import dataclass

import redis
from psycopg_pool import ConnectionPool
from rq import Queue

from domain.settings import Settings
from workers.stripe_api import StripeApi


@dataclass
class Services:
    settings: Settings
    pool: ConnectionPool
    redis: redis.Redis
    queue: Queue  # the event queue
    stripe: StripeApi

    def __repr__(self) -> str:
        # The default would spell out every field; Settings' own repr masks its secrets.
        return f"Services(settings={self.settings!r}, queue={self.queue.name!r}, stripe={self.stripe!r})"

    def open(self) -> Services:
        """Open the pool (connections are made lazily, so after fork); returns self."""
        if self.pool.closed:
            self.pool.open(wait=False)
        return self

    def close(self) -> None:
        self.pool.close()
        self.redis.close()
        self.stripe.close()
