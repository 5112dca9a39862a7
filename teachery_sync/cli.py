"""The `teachery-sync` command line."""
from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

import click

from domain.settings import ConfigError, Settings


class Failure(click.ClickException):
    """Exit non-zero with a one-line reason."""

    def show(self, file=None):
        click.echo(f"error: {self.format_message()}", err=True)


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise Failure(str(exc))


def _services(settings: Settings | None = None):
    """The composition root's services, after checking PostgreSQL answers (a one-line reason if not)."""
    import psycopg

    from domain.db import redact
    from teachery_sync.bootstrap import build

    settings = settings or _settings()
    try:
        psycopg.connect(settings.database_url, connect_timeout=5).close()
    except psycopg.Error as exc:
        raise Failure(f"cannot reach PostgreSQL at {redact(settings.database_url)}: {' '.join(str(exc).split())}")
    return build(settings).open()


def _iso(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time (e.g. 2026-11-01T00:00:00Z)")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


class _Commands(click.Group):
    """Turns an unreachable database or Redis into the contract's one-line reason, in every command."""

    def invoke(self, ctx):
        import psycopg
        import redis
        from psycopg_pool import PoolTimeout

        try:
            return super().invoke(ctx)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            from domain.db import redact

            settings = Settings.from_env()
            raise Failure(f"cannot reach PostgreSQL at {redact(settings.database_url)}: "
                          f"{' '.join(str(exc).split()) or type(exc).__name__}")
        except redis.exceptions.ConnectionError as exc:
            from domain.db import redact_url

            raise Failure(f"cannot reach Redis at {redact_url(Settings.from_env().redis_url)}: {exc}")


def _configure_logging(command: str | None) -> None:
    """One log format for every command (LOG_FORMAT; console by default under `dev`), secrets masked."""
    from teachery_sync.logs import configure_logging

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


@main.command()
def migrate():
    """Create the database if it is missing and apply pending migrations (safe to run twice).

    \b
    Example:
      DATABASE_URL=postgresql:///teachery_sync teachery-sync migrate
    """
    from domain.db import DatabaseUnavailable
    from domain.migrate import migrate as run

    settings = _settings()
    try:
        applied = run(settings.database_url)
    except DatabaseUnavailable as exc:
        raise Failure(str(exc))
    click.echo(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else "; up to date"))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", "num_workers", default=2, show_default=True, type=int, help="gunicorn worker processes")
def web(host, port, num_workers):
    """Run the webhook receiver and admin API under gunicorn.

    \b
    Example:
      STRIPE_WEBHOOK_SECRET=whsec_… ADMIN_TOKEN=… teachery-sync web --port 8000
    """
    settings = _settings()
    try:
        settings.require_webhook_secret()
    except ConfigError as exc:
        raise Failure(str(exc))
    from teachery_sync.serve import serve

    serve(host, port, num_workers, access_log=settings.access_log)


@main.command()
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
    from teachery_sync.worker_command import WorkerError, run
    from workers.queueing import QUEUES

    services = _services()
    if not supervised:
        _require_redis(services)
    names = [q.strip() for q in queues.split(",") if q.strip()] if queues else list(QUEUES)
    unknown = sorted(set(names) - set(QUEUES))
    if unknown or not names:
        raise Failure(f"unknown queue(s): {', '.join(unknown) or '(none given)'} (ours: {', '.join(QUEUES)})")
    try:
        status = run(services, names, burst)
    except WorkerError as exc:
        raise Failure(str(exc))
    sys.exit(status)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _require_redis(services) -> None:
    try:
        services.redis.ping()
    except Exception as exc:
        from domain.db import redact_url

        raise Failure(f"cannot reach Redis at {redact_url(services.settings.redis_url)}: {_first_line(exc)}")


# --- the event ledger -------------------------------------------------------------------------

@main.group()
def events():
    """Inspect the event ledger and replay events from it.

    \b
    Examples:
      teachery-sync events list --status waiting
      teachery-sync events show evt_1NispeJDPojXS6LN0igeffJ6
      teachery-sync events replay --status failed
    """


@events.command("list")
@click.option("--status", type=click.Choice(["received", "processing", "processed", "ignored", "waiting", "failed"]))
@click.option("--type", "type_", help="event type, e.g. charge.refunded")
@click.option("--since", help="only events received at or after this ISO time")
@click.option("--account", help="only this connected account's events (acct_…), or `platform`")
@click.option("--object", "object_id", help="only events about this Stripe object (its data.object, or an id "
                                            "data.object names: customer, charge, payment_intent, invoice, "
                                            "subscription)")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def events_list(status, type_, since, account, object_id, limit, as_json):
    """List events, newest first.

    \b
    Examples:
      teachery-sync events list --status failed
      teachery-sync events list --object cus_1Jenny --since 2026-11-01T00:00:00Z
      teachery-sync events list --account acct_1Creator --json
    """
    from domain import ledger

    try:
        account_key = ledger.account_filter(account)
    except ValueError as exc:
        raise Failure(f"bad --account: {exc}")
    since_at = _since(since)
    with _services().pool.connection() as conn:
        rows = ledger.list_events(conn, status=status, type_=type_, since=since_at, account=account_key,
                                  object_id=object_id, limit=limit)
    if as_json:
        click.echo(json.dumps([_event_row(e) for e in rows], indent=2))
        return
    if not rows:
        click.echo("no events")
        return
    table = _table("id", "type", "account", "source", "status", "attempts", "received_at", "next attempt",
                   "last_error")
    for e in rows:
        table.add_row(e.id, e.type, e.account or "-", e.source, e.status, str(e.attempts), _when(e.received_at),
                      _when(e.next_attempt_at) or "-", (e.last_error or "")[:80])
    _print(table)
    click.echo(f"{len(rows)} event(s)")


def _since(value: str | None):
    from domain.times import parse_iso

    try:
        return parse_iso(value) if value is not None else None
    except ValueError as exc:
        raise Failure(f"bad --since: {exc}")


def _when(value) -> str | None:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if value else None


def _table(*columns: str, title: str | None = None):
    from rich.table import Table

    return Table(*columns, title=title, title_justify="left")


def _print(*renderables) -> None:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # piped or captured: full ids, never squeezed to 80 columns
        console = Console(width=250)
    for renderable in renderables:
        console.print(renderable)


def _event_row(e) -> dict:
    from domain.times import iso

    return {"id": e.id, "type": e.type, "account": e.account or None, "source": e.source, "status": e.status,
            "attempts": e.attempts, "received_at": iso(e.received_at), "next_attempt_at": iso(e.next_attempt_at),
            "last_error": e.last_error}


@events.command("show")
@click.argument("event_id")
@click.option("--json", "as_json", is_flag=True, help="print JSON (with the payload) instead of tables")
def events_show(event_id, as_json):
    """Show one event: status, every attempt (time, kind, outcome, error) and the records it changed.

    \b
    Examples:
      teachery-sync events show evt_1NispeJDPojXS6LN0igeffJ6
      teachery-sync events show evt_1NispeJDPojXS6LN0igeffJ6 --json    # with the payload
    """
    from domain import ledger
    from domain.times import iso

    with _services().pool.connection() as conn:
        event = ledger.get_event(conn, event_id, with_payload=True)
        if event is None:
            raise Failure(f"event {event_id} is not in the ledger")
        changes = ledger.changes_of(conn, event_id)
        attempts = ledger.attempts_log(conn, event_id)
    if as_json:
        body = _event_row(event) | {"waiting_on": event.waiting_on, "processed_at": iso(event.processed_at),
                                    "attempts_log": [a | {"at": iso(a["at"])} for a in attempts],
                                    "changes": changes, "payload": event.payload}
        click.echo(json.dumps(body, indent=2))
        return
    about = _table("field", "value", title=f"event {event.id}")
    for field, value in (("type", event.type), ("account", event.account or "platform"), ("source", event.source),
                         ("status", event.status), ("attempts", str(event.attempts)),
                         ("waiting on", event.waiting_on), ("next attempt", _when(event.next_attempt_at)),
                         ("received", _when(event.received_at)), ("processed", _when(event.processed_at)),
                         ("last error", event.last_error)):
        about.add_row(field, value or "-")
    tried = _table("#", "at", "kind", "outcome", "error", title="attempts")
    for number, attempt in enumerate(attempts, 1):
        tried.add_row(str(number), _when(attempt["at"]), attempt["kind"], attempt["status"], attempt["error"] or "")
    changed = _table("record", "id", "change", title="records it changed")
    for change in changes:
        changed.add_row(change["record_type"] or "-", change["record_id"] or "-", change["message"])
    _print(about, tried, changed)
    click.echo("(--json shows the payload)")


@events.command("replay")
@click.argument("event_ids", nargs=-1)
@click.option("--status", type=click.Choice(["failed", "waiting", "received", "processed", "ignored"]),
              help="replay every event with this status")
@click.option("--since", help="replay every event received since this ISO time")
def events_replay(event_ids, status, since):
    """Process events again, as the admin API's replay does (idempotent: an event already applied
    changes nothing). A replay is an extra attempt: it does not use up the automatic retries, and a
    replay of an event whose replay is still queued merges into it.

    \b
    Examples:
      teachery-sync events replay evt_1Abc evt_2Def
      teachery-sync events replay --status failed
      teachery-sync events replay --since 2026-11-01T00:00:00Z
    """
    from domain import ledger
    from workers.replays import replay

    if not event_ids and not status and not since:
        raise Failure("name event ids, or give --status or --since")
    services = _services()
    since_at = _since(since)
    if not event_ids:
        with services.pool.connection() as conn:
            event_ids = ledger.ids_matching(conn, status=status, since=since_at)
    with services.pool.connection() as conn:
        if not ledger.known(conn, list(event_ids)) and event_ids:
            raise Failure(_not_in_ledger(list(dict.fromkeys(event_ids))))
    _require_redis(services)
    done = replay(services, list(event_ids))
    click.echo(f"queued {len(done.queued)} event(s) for replay"
               + (f"; {len(done.merged)} already had a replay queued" if done.merged else ""))
    if done.missing:
        raise Failure(_not_in_ledger(done.missing))


def _not_in_ledger(ids: list[str]) -> str:
    return f"not in the ledger: {', '.join(ids)}"


# --- RQ's failed jobs ---------------------------------------------------------------------------

@main.group()
def jobs():
    """RQ's failed jobs.

    \b
    Examples:
      teachery-sync jobs failed
      teachery-sync jobs requeue --all
    """


@jobs.command("failed")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def jobs_failed(as_json):
    """List RQ's failed jobs (events that gave up, crashed reconciliations) with their error and times.

    \b
    Examples:
      teachery-sync jobs failed
      teachery-sync jobs failed --json
      teachery-sync jobs requeue --all
    """
    from domain.times import iso
    from workers.queueing import failed_jobs, reconciliation_queue

    services = _services()
    _require_redis(services)
    rows = failed_jobs(services.queue) + failed_jobs(reconciliation_queue(services.queue))
    if as_json:
        click.echo(json.dumps([r | {"enqueued_at": iso(r["enqueued_at"]), "ended_at": iso(r["ended_at"])}
                               for r in rows], indent=2))
        return
    table = _table("id", "queue", "enqueued", "ended", "description", "error")
    for r in rows:
        table.add_row(r["id"], r["queue"], _when(r["enqueued_at"]) or "-", _when(r["ended_at"]) or "-",
                      r["description"], r["error"])
    if rows:
        _print(table)
    click.echo(f"{len(rows)} failed job(s)")


@jobs.command("requeue")
@click.argument("job_ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="requeue every failed job")
def jobs_requeue(job_ids, all_):
    """Put failed jobs back on their queue.

    \b
    Examples:
      teachery-sync jobs requeue --all
      teachery-sync jobs requeue event-evt_1Abc
    """
    from workers.queueing import reconciliation_queue, requeue_failed

    if not job_ids and not all_:
        raise Failure("name job ids or give --all")
    services = _services()
    _require_redis(services)
    done, missing = requeue_failed(services.queue, None if all_ else list(job_ids))
    more, missing = requeue_failed(reconciliation_queue(services.queue), None if all_ else missing)
    done += more
    click.echo(f"requeued {done} job(s)")
    if missing:
        raise Failure(f"not among the failed jobs: {', '.join(missing)}")


# --- dev and trigger (issue 3) ---------------------------------------------------------------

@main.command()
@click.option("--port", default=8000, show_default=True, type=int, help="port of the web server")
@click.option("--host", default="127.0.0.1", show_default=True, help="address the web server listens on")
@click.option("--web-workers", default=1, show_default=True, type=click.IntRange(1, 16),
              help="gunicorn worker processes")
@click.option("--redis-port", default=6380, show_default=True, type=int,
              help="port of the embedded Redis (another free one is taken when it is busy)")
@click.option("--dev-dir", default=".dev", show_default=True, type=click.Path(file_okay=False),
              help="where the embedded servers keep their data, and .dev/env")
def dev(port, host, web_workers, redis_port, dev_dir):
    """Run the whole service locally: database, Redis, migrations, web server and worker.

    With DATABASE_URL / REDIS_URL unset, starts an embedded PostgreSQL and Redis
    (`pip install -e '.[dev]'`) that keep their data in .dev/ between runs.
    Generates a webhook secret and an admin token once (kept in .dev/env) and
    prints them. Ctrl-C stops everything.

    \b
    Examples:
      teachery-sync dev
      teachery-sync dev --port 8001
      DATABASE_URL=postgresql:///teachery_sync REDIS_URL=redis://127.0.0.1:6379/0 teachery-sync dev
      set -a; . .dev/env; set +a     # in another shell: the same settings as the stack
    """
    import os
    from pathlib import Path

    from teachery_sync.dev import DevError, DevOptions, run

    options = DevOptions(dev_dir=Path(dev_dir), host=host, port=port, web_workers=web_workers,
                         redis_port=redis_port)
    try:
        status = run(dict(os.environ), options)
    except DevError as exc:
        raise Failure(str(exc))
    sys.exit(status)


@main.command()
@click.argument("event_type")
@click.option("--url", help="the receiver [default: the running `dev` stack's, else "
                            "http://127.0.0.1:8000/webhooks/stripe]")
@click.option("--secret", envvar="STRIPE_WEBHOOK_SECRET", show_envvar=True,
              help="signing secret (whsec_…) [default: the one in .dev/env]")
@click.option("--account", help="send as events of this connected account (acct_…)")
@click.option("--customer", help="the customer (cus_…): buys, or is updated/deleted [default: the last one]")
@click.option("--charge", help="the charge to refund (ch_…) [default: the last one]")
@click.option("--refund", help="the refund that fails (re_…) [default: the last one]")
@click.option("--subscription", help="the subscription to change (sub_…) [default: the last one]")
@click.option("--amount", type=int, help="cents: the price of a purchase [4900], or of a refund [what is left]")
@click.option("--currency", default="usd", show_default=True)
@click.option("--course", default="course_demo", show_default=True, help="metadata.course_id of a purchase")
@click.option("--mode", type=click.Choice(["payment", "subscription"]), default="payment", show_default=True,
              help="checkout.session.completed: a one-off payment or a subscription")
@click.option("--pause", "changes", flag_value="pause", multiple=True,
              help="customer.subscription.updated: pause collection")
@click.option("--resume", "changes", flag_value="resume", multiple=True,
              help="customer.subscription.updated: resume collection")
@click.option("--cancel-at-period-end", "changes", flag_value="cancel-at-period-end", multiple=True,
              help="customer.subscription.updated: cancel when the period ends")
@click.option("--reactivate", "changes", flag_value="reactivate", multiple=True,
              help="customer.subscription.updated: take back a cancellation at period end")
@click.option("--behavior", type=click.Choice(["void", "keep_as_draft", "mark_uncollectible"]), default="void",
              show_default=True, help="with --pause")
@click.option("--resumes-at", help="with --pause: when collection resumes by itself (ISO time)")
@click.option("--reason", type=click.Choice(["duplicate", "fraudulent", "requested_by_customer"]),
              help="the refund's reason")
@click.option("--name", help="the customer's name (purchase by a new customer, customer.updated)")
@click.option("--email", help="the customer's email (purchase by a new customer, customer.updated)")
@click.option("--api-version", type=click.Choice(["2020-03-02", "2024-06-20", "2025-03-31.basil"]),
              default="2024-06-20", show_default=True, help="the shape of the payloads")
@click.option("--dev-dir", default=".dev", show_default=True, type=click.Path(file_okay=False),
              help="holds trigger-state.json (the objects made so far) and the dev stack's env")
@click.option("--print", "dry_run", is_flag=True, help="print the events as JSON instead of sending them")
def trigger(event_type, url, secret, dev_dir, api_version, dry_run, resumes_at, changes, **fields):
    """Send realistic, correctly signed Stripe events to a running receiver.

    Like `stripe trigger`: one trigger sends every event Stripe sends for the
    change, and remembers the objects so that later triggers refund, pause or
    cancel them (or name them with --charge, --subscription, …).

    \b
    EVENT_TYPE is one of:
      checkout.session.completed [--mode subscription]  a purchase of a course
      charge.failed                                     a declined card
      invoice.paid                                      a subscription renews
      charge.refunded [--amount N]                      a whole or partial refund
      refund.failed                                     a refund fails afterwards
      customer.subscription.updated --pause|--resume|--cancel-at-period-end|--reactivate
      customer.subscription.deleted                     canceled now
      customer.subscription.paused / .resumed           status paused / active again
      customer.updated --name/--email, customer.deleted

    \b
    Examples:
      teachery-sync trigger checkout.session.completed
      teachery-sync trigger charge.refunded --amount 1000
      teachery-sync trigger checkout.session.completed --mode subscription --course course_yoga
      teachery-sync trigger customer.subscription.updated --pause --behavior void
      teachery-sync trigger customer.subscription.deleted --subscription sub_1Abc
      teachery-sync trigger checkout.session.completed --account acct_1Creator --print
    """
    from pathlib import Path

    from teachery_sync import dev_env
    from teachery_sync.trigger import DEFAULT_URL, run
    from teachery_sync.trigger_scenarios import TriggerError, TriggerOptions

    if len(set(changes)) > 1:
        raise Failure("--pause, --resume, --cancel-at-period-end and --reactivate exclude each other: give one")
    dev_path = Path(dev_dir)
    recorded, _ = dev_env.read_env(dev_path)
    secret = (secret or recorded.get("STRIPE_WEBHOOK_SECRET") or "").split(",")[0].strip()
    if not secret and not dry_run:
        raise Failure("no signing secret: set STRIPE_WEBHOOK_SECRET (or pass --secret) to the receiver's "
                      "whsec_… secret; `teachery-sync dev` keeps its own in .dev/env")
    url = url or recorded.get(dev_env.WEBHOOK_URL_KEY) or DEFAULT_URL
    resumes = _iso(resumes_at)
    options = TriggerOptions(resumes_at=int(resumes.timestamp()) if resumes else None,
                             change=changes[0] if changes else None, **fields)
    try:
        run(event_type, options, url=url, secret=secret, state_path=dev_path / "trigger-state.json",
            api_version=api_version, echo=click.echo, dry_run=dry_run)
    except TriggerError as exc:
        raise Failure(str(exc))


# --- backfill and reconcile ---------------------------------------------------------------------

def _stderr_console():
    """Where progress goes (logs go to stderr too), so that stdout carries only the summary or report."""
    from rich.console import Console

    return Console(stderr=True)


@main.command()
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
    from domain.reconciliations import parse_request
    from domain.times import iso, parse_iso
    from teachery_sync.progress import progress_bar
    from workers.backfill import BackfillError, window_start
    from workers.backfill import backfill as run

    try:
        parse_request({"account": account})
    except ValueError as exc:
        raise Failure(f"bad --account: {exc}")
    try:
        since_at = parse_iso(since)
        start, clamped = window_start(since_at, datetime.now(timezone.utc))
    except (ValueError, BackfillError) as exc:
        raise Failure(f"bad --since: {exc}")
    if clamped:
        click.echo(f"warning: Stripe keeps events for 30 days: fetching from {iso(start)}, not {iso(since_at)}",
                   err=True)
    services = _services()
    try:
        _require_redis(services)
        with progress_bar(_stderr_console()) as report:
            tallies = run(services, since_at, account=account, report=report)
    except BackfillError as exc:
        _print_tallies(exc.tallies)
        raise Failure(str(exc))
    finally:
        services.close()
    _print_tallies(tallies)
    failed = [t for t in tallies if t.error]
    if failed:
        raise Failure("backfill incomplete: " + "; ".join(f"{t.as_dict()['account']}: {t.error}" for t in failed))


def _print_tallies(tallies) -> None:
    from rich.console import Console
    from rich.table import Table

    if not tallies:
        return
    table = Table("account", "fetched", "new", "already known", title="backfill")
    for t in tallies:
        table.add_row(t.as_dict()["account"] or "platform", str(t.fetched), str(t.new), str(t.known))
    Console().print(table)
    click.echo(f"backfill: {sum(t.fetched for t in tallies)} fetched, {sum(t.new for t in tallies)} new, "
               f"{sum(t.known for t in tallies)} already known")


@main.command()
@click.option("--account", help="only this connected account (acct_…) [default: the platform and every known one]")
@click.option("--customer", help="only this Stripe customer (cus_…) and its subscriptions, charges and refunds")
@click.option("--since", help="only objects created at or after this ISO time")
@click.option("--dry-run", is_flag=True, help="report the drift, change nothing")
@click.option("--json", "as_json", is_flag=True, help="print only the report as JSON")
def reconcile(account, customer, since, dry_run, as_json):
    """Compare our records with Stripe, fix the drift (unless --dry-run) and print the report.

    The same run as POST /admin/api/reconciliations, here synchronously, with a progress bar.

    \b
    Examples:
      teachery-sync reconcile --dry-run
      teachery-sync reconcile --account acct_1Creator --customer cus_1Jenny
      teachery-sync reconcile --since 2026-11-01T00:00:00Z --json
    """
    from domain.reconciliations import ScopeBusy, parse_request
    from teachery_sync.progress import progress_bar
    from workers import reconciliation

    try:
        scope, dry_run = parse_request({"account": account, "customer": customer, "since": since,
                                        "dry_run": dry_run})
    except ValueError as exc:
        raise Failure(str(exc))
    services = _services()
    try:
        if not services.stripe.configured:
            raise Failure("STRIPE_API_KEY is not set: a reconciliation reads Stripe's objects")
        try:
            run_id = reconciliation.create(services, scope, dry_run)
        except ScopeBusy as exc:
            raise Failure(str(exc))
        error = None
        with progress_bar(_stderr_console()) as report:
            try:
                reconciliation.run(services, run_id, report)
            except Exception as exc:  # the run is marked failed with its error; shown below
                error = _first_line(exc)
        body = reconciliation.report_of(services, run_id)
    finally:
        services.close()
    if as_json:
        click.echo(json.dumps(body, indent=2, ensure_ascii=False))
    else:
        _print_drift(body)
    if error:
        raise Failure(f"reconciliation failed: {error}")


def _print_drift(body: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("object", "field", "ours", "Stripe's", "fixed", title=f"reconciliation {body['id']}")
    for item in body["drift"]:
        table.add_row(item["object"], item["field"], json.dumps(item["local"], ensure_ascii=False),
                      json.dumps(item["stripe"], ensure_ascii=False),
                      "yes" if item["fixed"] else "no")
    Console().print(table)
    click.echo(f"{body['status']}: {body['checked']} checked, {len(body['drift'])} drifted, {body['fixed']} fixed"
               + (" (dry run)" if body["dry_run"] else ""))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
