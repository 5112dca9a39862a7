"""`teachery-sync migrate`, `web`, `worker` and `clock`: what a deployment runs (the Procfile's lines)."""
from __future__ import annotations

import sys

import click
import redis

from domain.db import DatabaseUnavailable
from domain.migrate import migrate as apply_migrations
from domain.settings import ConfigError
from teachery_sync.cli.helpers import (
    PORT,
    Failure,
    load_settings,
    open_services,
    redis_unreachable,
    require_redis,
)
from teachery_sync.worker_command import WorkerError
from teachery_sync.worker_command import run as run_workers
from workers.queueing import QUEUES


@click.command()
def migrate():
    """Create the database if it is missing and apply pending migrations (safe to run twice).

    \b
    Example:
      DATABASE_URL=postgresql:///teachery_sync teachery-sync migrate
    """
    settings = load_settings()
    try:
        applied = apply_migrations(settings.database_url)
    except DatabaseUnavailable as exc:
        raise Failure(str(exc)) from exc
    click.echo(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else "; up to date"))


# More processes than this on one machine only share its cores (and PostgreSQL's connections) thinner; a
# mistyped count must not fork until the machine runs out of memory. Scale out with more machines.
MAX_WEB_WORKERS = 64


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=PORT)
@click.option("--workers", "num_workers", default=2, show_default=True, type=click.IntRange(1, MAX_WEB_WORKERS),
              help="gunicorn worker processes (each with 8 threads and 8 database connections)")
def web(host, port, num_workers):
    """Run the webhook receiver and admin API under gunicorn.

    \b
    Example:
      STRIPE_WEBHOOK_SECRET=whsec_… ADMIN_TOKEN=… teachery-sync web --port 8000
    """
    settings = load_settings()
    try:
        settings.require_webhook_secret()
    except ConfigError as exc:
        raise Failure(str(exc)) from exc
    from teachery_sync.serve import serve  # here, not above: only `web` needs gunicorn

    serve(host, port, num_workers, metrics_dir=settings.metrics_dir, access_log=settings.access_log)


@click.command()
@click.option("--burst", is_flag=True, help="drain the queues, then exit")
@click.option("--queues", default=None, help="comma-separated queue names (default: every queue we use)")
@click.option("--supervised", is_flag=True, hidden=True,
              help="started by another worker: wait for Redis at start instead of failing")
def worker(burst, queues, supervised):
    """Run the RQ workers that apply events to the records and run reconciliations.

    Events are served by this process; the reconciliation queue by a second worker process that it
    supervises, so that a long run never holds up events. A Redis outage is waited out.

    \b
    Examples:
      teachery-sync worker
      teachery-sync worker --burst
      teachery-sync worker --queues teachery-events
    """
    services = open_services()
    if not supervised:
        require_redis(services)
    names = [q.strip() for q in queues.split(",") if q.strip()] if queues else list(QUEUES)
    unknown = sorted(set(names) - set(QUEUES))
    if unknown or not names:
        raise Failure(f"unknown queue(s): {', '.join(unknown) or '(none given)'} (ours: {', '.join(QUEUES)})")
    try:
        status = run_workers(services, names, burst)
    except WorkerError as exc:
        raise Failure(str(exc)) from exc
    sys.exit(status)


@click.command()
def clock():
    """Enqueue the scheduled reconciliation runs at their times (UTC) until stopped.

    RECONCILE_SCHEDULE (default "0 3 * * *") is the nightly run of what changed since
    the last full success; RECONCILE_FULL_SCHEDULE (default "0 4 * * 0") the weekly
    full run; empty turns one off. The runs go on the reconciliation queue: a
    `teachery-sync worker` runs them. Needs Redis only; waits out a Redis outage.

    \b
    Examples:
      teachery-sync clock
      RECONCILE_SCHEDULE="30 2 * * *" RECONCILE_FULL_SCHEDULE="" teachery-sync clock
    """
    from teachery_sync.clock import run as run_clock
    from teachery_sync.clock import waiting_redis

    settings = load_settings()
    try:
        redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=3).ping()
    except redis.RedisError as exc:  # at start, a one-line reason; later an outage is waited out
        raise redis_unreachable(settings.redis_url, exc) from exc
    run_clock(settings, waiting_redis(settings.redis_url))
