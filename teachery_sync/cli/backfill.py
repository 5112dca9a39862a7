"""`teachery-sync backfill`: missed events fetched from Stripe's Events API, fed through the pipeline."""
from __future__ import annotations

from datetime import UTC, datetime

import click
from rich.console import Console
from rich.table import Table

from domain.reconciliations import parse_request
from domain.times import iso, parse_iso
from teachery_sync.cli.helpers import (
    Failure,
    open_services,
    progress_bar,
    require_redis,
)
from workers.backfill import BackfillError, window_start
from workers.backfill import backfill as run


@click.command()
@click.option("--since", required=True, help="fetch events created at or after this ISO time (30 days back at most)")
@click.option("--account", help="only this connected account (acct_…) [default: the platform and every known one]")
def backfill(since, account):
    """Fetch missed events from Stripe's Events API and feed them through the receiver's pipeline.

    Each event is stored once in the ledger (events already there are counted, not applied again)
    and queued for the worker, oldest first. Stripe keeps events for 30 days: an older --since is
    moved to 30 days ago, with a warning.

    \b
    Examples:
      teachery-sync backfill --since 2026-11-01T00:00:00Z
      teachery-sync backfill --since 2026-11-01 --account acct_1Creator
    """
    try:
        parse_request({"account": account})
    except ValueError as exc:
        raise Failure(f"bad --account: {exc}") from exc
    try:
        since_at = parse_iso(since)
        start, clamped = window_start(since_at, datetime.now(UTC))
    except (ValueError, BackfillError) as exc:
        raise Failure(f"bad --since: {exc}") from exc
    if clamped:
        click.echo(f"warning: Stripe keeps events for 30 days: fetching from {iso(start)}, not {iso(since_at)}",
                   err=True)
    services = open_services()
    try:
        require_redis(services)
        with progress_bar() as report:
            tallies = run(services, since_at, account=account, report=report)
    except BackfillError as exc:
        _print_tallies(exc.tallies)
        raise Failure(str(exc)) from exc
    finally:
        services.close()
    _print_tallies(tallies)
    failed = [t for t in tallies if t.error]
    if failed:
        raise Failure("backfill incomplete: " + "; ".join(f"{t.as_dict()['account']}: {t.error}" for t in failed))


def _print_tallies(tallies) -> None:
    if not tallies:
        return
    table = Table("account", "fetched", "new", "already known", title="backfill")
    for t in tallies:
        table.add_row(t.as_dict()["account"] or "platform", str(t.fetched), str(t.new), str(t.known))
    Console().print(table)
    click.echo(f"backfill: {sum(t.fetched for t in tallies)} fetched, {sum(t.new for t in tallies)} new, "
               f"{sum(t.known for t in tallies)} already known")
