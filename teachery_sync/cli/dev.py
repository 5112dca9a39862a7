"""`teachery-sync dev` and `trigger`: the whole stack on one machine, and test events to send it."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from domain.times import parse_iso
from teachery_sync import dev_env
from teachery_sync.cli.helpers import PORT, Failure
from teachery_sync.dev import DevError, DevOptions
from teachery_sync.dev import run as run_stack
from teachery_sync.embedded import DEFAULT_REDIS_PORT
from trigger import DEFAULT_URL, TriggerError, TriggerOptions
from trigger import run as run_trigger
from trigger.samples import API_VERSIONS, DEFAULT_API_VERSION
from trigger.scenarios import (
    CHECKOUT_MODES,
    DEFAULT_COURSE,
    PAUSE_BEHAVIORS,
    REFUND_REASONS,
)


@click.command()
@click.option("--port", default=8000, show_default=True, type=PORT, help="port of the web server")
@click.option("--host", default="127.0.0.1", show_default=True, help="address the web server listens on")
@click.option("--web-workers", default=1, show_default=True, type=click.IntRange(1, 16),
              help="gunicorn worker processes")
@click.option("--redis-port", default=DEFAULT_REDIS_PORT, show_default=True, type=PORT,
              help="port of the embedded Redis (another free one is taken when it is busy)")
@click.option("--dev-dir", default=".dev", show_default=True, type=click.Path(file_okay=False),
              help="where the embedded servers keep their data, and .dev/env")
def dev(port, host, web_workers, redis_port, dev_dir):
    """Run the whole service locally: database, Redis, migrations, web server, worker and clock.

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
    options = DevOptions(dev_dir=Path(dev_dir), host=host, port=port, web_workers=web_workers,
                         redis_port=redis_port)
    try:
        status = run_stack(dict(os.environ), options)
    except DevError as exc:
        raise Failure(str(exc)) from exc
    sys.exit(status)


@click.command()
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
@click.option("--course", default=DEFAULT_COURSE, show_default=True, help="metadata.course_id of a purchase")
@click.option("--mode", type=click.Choice(CHECKOUT_MODES), default="payment", show_default=True,
              help="checkout.session.completed: a one-off payment or a subscription")
@click.option("--pause", "changes", flag_value="pause", multiple=True,
              help="customer.subscription.updated: pause collection")
@click.option("--resume", "changes", flag_value="resume", multiple=True,
              help="customer.subscription.updated: resume collection")
@click.option("--cancel-at-period-end", "changes", flag_value="cancel-at-period-end", multiple=True,
              help="customer.subscription.updated: cancel when the period ends")
@click.option("--reactivate", "changes", flag_value="reactivate", multiple=True,
              help="customer.subscription.updated: take back a cancellation at period end")
@click.option("--behavior", type=click.Choice(PAUSE_BEHAVIORS), default="void", show_default=True, help="with --pause")
@click.option("--resumes-at", help="with --pause: when collection resumes by itself (ISO time)")
@click.option("--reason", type=click.Choice(REFUND_REASONS), help="the refund's reason")
@click.option("--name", help="the customer's name (purchase by a new customer, customer.updated)")
@click.option("--email", help="the customer's email (purchase by a new customer, customer.updated)")
@click.option("--api-version", type=click.Choice(API_VERSIONS), default=DEFAULT_API_VERSION, show_default=True,
              help="the shape of the payloads")
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
    if len(set(changes)) > 1:
        raise Failure("--pause, --resume, --cancel-at-period-end and --reactivate exclude each other: give one")
    dev_path = Path(dev_dir)
    recorded, _ = dev_env.read_env(dev_path)
    secret = (secret or recorded.get("STRIPE_WEBHOOK_SECRET") or "").split(",")[0].strip()
    if not secret and not dry_run:
        raise Failure("no signing secret: set STRIPE_WEBHOOK_SECRET (or pass --secret) to the receiver's "
                      "whsec_… secret; `teachery-sync dev` keeps its own in .dev/env")
    url = url or recorded.get(dev_env.WEBHOOK_URL_KEY) or DEFAULT_URL
    try:
        resumes = parse_iso(resumes_at) if resumes_at is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    options = TriggerOptions(resumes_at=int(resumes.timestamp()) if resumes else None,
                             change=changes[0] if changes else None, **fields)
    try:
        run_trigger(event_type, options, url=url, secret=secret, state_path=dev_path / "trigger-state.json",
                    api_version=api_version, echo=click.echo, dry_run=dry_run)
    except TriggerError as exc:
        raise Failure(str(exc)) from exc
