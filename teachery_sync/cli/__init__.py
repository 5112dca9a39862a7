"""The `teachery-sync` command line: the group and its logging here, one module per command group."""
from __future__ import annotations

import logging

import click
import psycopg
import redis
from psycopg_pool import PoolTimeout

from domain.settings import ConfigError, Settings
from teachery_sync.cli.dev import dev, trigger
from teachery_sync.cli.helpers import postgres_unreachable, redis_unreachable
from teachery_sync.cli.jobs import jobs
from teachery_sync.cli.ledger import events
from teachery_sync.cli.serve import clock, migrate, web, worker
from teachery_sync.cli.sync import backfill, reconcile
from teachery_sync.logs import configure_logging


class _Commands(click.Group):
    """Turns an unreachable database or Redis into the contract's one-line reason, in every command."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise postgres_unreachable(Settings.from_env().database_url, exc) from exc
        except redis.exceptions.ConnectionError as exc:
            raise redis_unreachable(Settings.from_env().redis_url, exc) from exc


def _configure_logging(command: str | None) -> None:
    """One log format for every command (LOG_FORMAT; console by default under `dev`), secrets masked."""
    try:
        settings = Settings.from_env()
    except ConfigError:  # the command that reads the settings says what is wrong
        settings = None
    fmt = settings.log_format if settings and settings.log_format else ("console" if command == "dev" else "json")
    level = getattr(logging, settings.log_level.upper()) if settings else logging.INFO
    configure_logging(fmt, secrets=settings.secret_values() if settings else (), level=level)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def main(ctx):
    """teachery-sync: keeps Teachery's customer records in step with Stripe.

    \b
    Examples:
      teachery-sync migrate
      teachery-sync web --port 8000
      teachery-sync worker --burst
      teachery-sync events list --status failed
    """
    _configure_logging(ctx.invoked_subcommand)


for command in (migrate, web, worker, clock, events, jobs, dev, trigger, backfill, reconcile):
    main.add_command(command)
