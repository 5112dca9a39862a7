"""`teachery-sync backfill` and `reconcile`: our records caught up with Stripe, from its events or its objects."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import click

from domain import reconciliations as runs
from domain.errors import first_line
from domain.reconciliations import NotApplicable, ScopeBusy
from domain.times import iso, parse_iso
from teachery_sync.cli.helpers import Failure, open_services, print_wide, progress_bar, require_redis, table
from webhooks.reconciliation_report import whole_report
from workers import reconciliation
from workers.backfill import BackfillError, window_start
from workers.backfill import backfill as run_backfill
from workers.commands import CommandRefused, ReconciliationAsked

account_option = click.option(
    "--account", help="only this connected account (acct_…) [default: the platform and every known one]")


@click.command()
@click.option("--since", required=True, help="fetch events created at or after this ISO time (30 days back at most)")
@account_option
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
        ReconciliationAsked.parse({"account": account})
    except CommandRefused as exc:
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
            tallies = run_backfill(services, since_at, account=account, report=report)
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
    fetched = table("account", "fetched", "new", "already known", title="backfill")
    for t in tallies:
        fetched.add_row(t.as_dict()["account"] or "platform", str(t.fetched), str(t.new), str(t.known))
    print_wide(fetched)
    click.echo(f"backfill: {sum(t.fetched for t in tallies)} fetched, {sum(t.new for t in tallies)} new, "
               f"{sum(t.known for t in tallies)} already known")


@click.command()
@account_option
@click.option("--customer", help="only this Stripe customer (cus_…) and its subscriptions, charges and refunds")
@click.option("--since", help="only objects created at or after this ISO time")
@click.option("--changed-since", help="only the objects an event named since this ISO time (re-read from Stripe)")
@click.option("--dry-run", is_flag=True, help="report the drift, change nothing")
@click.option("--apply", "applies", metavar="RUN_ID",
              help="fix what a finished dry run found (each object re-read from Stripe, fixed if it still differs)")
@click.option("--json", "as_json", is_flag=True, help="print only the report as JSON")
def reconcile(account, customer, since, changed_since, dry_run, applies, as_json):
    """Compare our records with Stripe, fix the drift (unless --dry-run) and print the report.

    The same run as POST /admin/api/reconciliations (or, with --apply, POST
    /admin/api/reconciliations/{id}/apply), here synchronously, with a progress bar (objects/s, ETA).

    \b
    Examples:
      teachery-sync reconcile --dry-run
      teachery-sync reconcile --account acct_1Creator --customer cus_1Jenny
      teachery-sync reconcile --since 2026-11-01T00:00:00Z --json
      teachery-sync reconcile --changed-since 2026-11-30T00:00:00Z
      teachery-sync reconcile --apply 3f2b…   # the id of a succeeded dry run
    """
    for option, given in (("--apply", applies), ("--changed-since", changed_since)):
        if given is not None and not given.strip():  # "$RUN_ID" unset: it was a whole fixing run of every account
            raise Failure(f"{option} is empty: give {'a dry run' if option == '--apply' else 'an ISO time'}, "
                          "or leave the option out")
    if applies and (account or customer or since or changed_since or dry_run):
        raise Failure("--apply takes the dry run's scope: it cannot be given with other scope options or --dry-run")
    try:
        scope = ReconciliationAsked.parse({"account": account, "customer": customer, "since": since}).scope
        if changed_since:
            scope = replace(scope, changed_since=parse_iso(changed_since))
    except CommandRefused as exc:
        raise Failure(str(exc)) from exc
    except ValueError as exc:
        raise Failure("changed-since must be an ISO 8601 time, e.g. 2026-11-01T00:00:00Z") from exc
    services = open_services()
    try:
        if not services.stripe.configured:
            raise Failure("STRIPE_API_KEY is not set: a reconciliation reads Stripe's objects")
        try:
            if applies:
                run_id = reconciliation.create_applying(services, applies, trigger="cli")
                if run_id is None:
                    raise Failure(f"reconciliation {applies} not found")
            else:
                run_id = reconciliation.create(services, scope, dry_run, trigger="cli")
        except (ScopeBusy, NotApplicable) as exc:
            raise Failure(str(exc)) from exc
        error = None
        with progress_bar(rate=True) as report:
            try:
                reconciliation.run(services, run_id, report)
            except Exception as exc:  # the run is marked failed with its error; shown below
                error = first_line(exc)
        with services.pool.connection() as conn:
            body = whole_report(conn, runs.get(conn, run_id))
    finally:
        services.close()
    if as_json:
        click.echo(json.dumps(body, indent=2, ensure_ascii=False))
    else:
        _print_drift(body)
    if error:
        raise Failure(f"reconciliation failed: {error}")


def _print_drift(body: dict) -> None:
    drift = table("object", "field", "ours", "Stripe's", "fixed", title=f"reconciliation {body['id']}")
    for item in body["drift"]:
        drift.add_row(item["object"], item["field"], json.dumps(item["local"], ensure_ascii=False),
                      json.dumps(item["stripe"], ensure_ascii=False), "yes" if item["fixed"] else "no")
    print_wide(drift)
    click.echo(f"{body['status']}: {body['checked']} checked, {body['drift_count']} drifted, {body['fixed']} fixed"
               + (" (dry run)" if body["dry_run"] else "")
               + (f" (applying {body['applies']})" if body["applies"] else "")
               + (f" (resumed {body['resumed']}×)" if body["resumed"] else ""))
