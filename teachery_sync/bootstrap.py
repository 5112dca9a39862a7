"""The one composition root: builds the pool, the queue and the Stripe client from settings, and hands
them to the entry points (webhooks.app.create_app, the RQ jobs through teachery_sync/worker_command.py)."""
from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import Queue

from domain.db import make_pool
from domain.settings import Settings
from workers.queueing import QUEUE_NAME
from workers.rate_limit import RateLimiter
from workers.services import Services
from workers.stripe_api import MAX_RATE_LIMIT_WAIT, StripeApi

__all__ = ["Services", "build"]

WEB_RATE_LIMIT_WAIT = 10.0  # seconds an HTTP request may wait for Stripe's rate limit (workers: 60) before a 503


def build(settings: Settings | None = None, *, pool_size: int = 8, web: bool = False) -> Services:
    """Everything a process needs, from settings. Connections open lazily, after fork.

    web: a request must fail fast (503) when PostgreSQL or Redis is down, never hold its thread:
    a fail-fast pool (domain/db.py) and short Redis timeouts; and it waits less for Stripe's rate limit.
    """
    settings = settings or Settings.from_env()
    if web:  # one try of at most a second (redis-py would otherwise retry 10 times)
        options = dict(socket_connect_timeout=1, socket_timeout=1, retry=Retry(NoBackoff(), 0))
    else:
        options = dict(socket_connect_timeout=5, socket_timeout=10)
    conn = redis.Redis.from_url(settings.redis_url, **options)
    # The limiter's own client: one short try, so a Redis outage costs a Stripe call at most a second
    # (then the limiter lets calls through unthrottled; workers/rate_limit.py).
    limiter = RateLimiter(redis.Redis.from_url(settings.redis_url, socket_connect_timeout=1, socket_timeout=1,
                                               retry=Retry(NoBackoff(), 0)),
                          settings.stripe_max_requests_per_second)
    return Services(
        settings=settings,
        pool=make_pool(settings.database_url, max_size=pool_size, fail_fast=web),
        redis=conn,
        queue=Queue(QUEUE_NAME, connection=conn),
        stripe=StripeApi(settings.stripe_api_key, settings.stripe_api_base,
                         max_network_retries=settings.stripe_network_retries, limiter=limiter,
                         max_rate_limit_wait=WEB_RATE_LIMIT_WAIT if web else MAX_RATE_LIMIT_WAIT),
    )
