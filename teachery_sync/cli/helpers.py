"""What the commands share: the one-line failure, settings and services, times, tables and progress."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

import click
import psycopg
import redis
from psycopg_pool import PoolTimeout
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from domain.db import redact, redact_url
from domain.errors import first_line, one_line
from domain.settings import ConfigError, Settings
from domain.times import parse_iso
from teachery_sync.bootstrap import Services, build
from teachery_sync.logs import configure_logging

PORT = click.IntRange(1, 65535)  # a TCP port: anything else was a traceback from bind()


class Failure(click.ClickException):
    """Exit non-zero with a one-line reason."""

    def show(self, file=None):
        click.echo(f"error: {self.format_message()}", err=True)


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise Failure(str(exc)) from exc


def open_services(settings: Settings | None = None) -> Services:
    """The composition root's services, after checking PostgreSQL answers (a one-line reason if not)."""
    settings = settings or load_settings()
    try:
        psycopg.connect(settings.database_url, connect_timeout=5).close()
    except psycopg.Error as exc:
        raise postgres_unreachable(settings.database_url, exc) from exc
    return build(settings).open()


def postgres_unreachable(dsn: str, exc: Exception) -> Failure:
    # libpq's messages span lines: one line of them, the password masked
    return Failure(f"cannot reach PostgreSQL at {redact(dsn)}: {one_line(exc)}")


def redis_unreachable(url: str, exc: Exception) -> Failure:
    return Failure(f"cannot reach Redis at {redact_url(url)}: {first_line(exc)}")


def unreachable(exc: Exception) -> Failure | None:
    """The one-line reason for a command that met an unreachable database or Redis; None for anything else."""
    if isinstance(exc, psycopg.OperationalError | PoolTimeout):
        return postgres_unreachable(Settings.from_env().database_url, exc)
    if isinstance(exc, redis.exceptions.ConnectionError):
        return redis_unreachable(Settings.from_env().redis_url, exc)
    return None


def configure_command_logging(command: str | None) -> None:
    """One log format for every command (LOG_FORMAT; console by default under `dev`), secrets masked."""
    try:
        settings = Settings.from_env()
    except ConfigError:  # the command that reads the settings says what is wrong
        settings = None
    fmt = settings.log_format if settings and settings.log_format else ("console" if command == "dev" else "json")
    level = getattr(logging, settings.log_level.upper()) if settings else logging.INFO
    configure_logging(fmt, secrets=settings.secret_values() if settings else (), level=level)


def require_redis(services: Services) -> None:
    try:
        services.redis.ping()
    except Exception as exc:
        raise redis_unreachable(services.settings.redis_url, exc) from exc


def parse_time(value: str | None, option: str = "--since") -> datetime | None:
    """An ISO time option, or a one-line failure naming the option."""
    try:
        return parse_iso(value) if value is not None else None
    except ValueError as exc:
        raise Failure(f"bad {option}: {exc}") from exc


def table(*columns: str, title: str | None = None) -> Table:
    return Table(*columns, title=title, title_justify="left")


def print_wide(*renderables) -> None:
    """Print tables; piped or captured, at full width (whole ids), never squeezed to 80 columns."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=250)
    for renderable in renderables:
        console.print(renderable)


class RateColumn(ProgressColumn):
    """Items per second since the task started (as the API's `rate`)."""

    def render(self, task) -> Text:
        speed = task.completed / task.elapsed if task.elapsed else None
        return Text(f"{speed:,.0f}/s" if speed else "", style="progress.data.speed")


@contextmanager
def progress_bar(*, rate: bool = False) -> Iterator[Callable[[str, int, int | None], None]]:
    """A rich progress display on stderr behind the plain `report(label, done, total)` callback the services
    take: one bar per label; a label without a total shows a count and a spinner; with `rate`, the items
    per second and the time left (when the total is known) too. On stderr (with the logs), so that stdout
    carries only the summary or report."""
    pace = (RateColumn(), TextColumn("ETA"), TimeRemainingColumn()) if rate else ()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), *pace, console=Console(stderr=True)) as bar:
        tasks: dict[str, int] = {}

        def report(label: str, done: int, total: int | None = None) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total)
            bar.update(tasks[label], completed=done, total=total)

        yield report
