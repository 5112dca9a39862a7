"""`teachery-sync events …`: the event ledger, and replays from it."""
from __future__ import annotations

import json

import click

from domain import ledger
from domain.ledger import LIST_STATUSES
from domain.times import display, iso
from teachery_sync.cli.helpers import (
    Failure,
    open_services,
    parse_time,
    print_wide,
    require_redis,
    table,
)
from workers.replays import replay, replay_matching

# The API's list of filter values: every status, and `processing`, which is no longer stored and matches nothing.
STATUSES = click.Choice(LIST_STATUSES)


@click.group()
def events():
    """Inspect the event ledger and replay events from it.

    \b
    Examples:
      teachery-sync events list --status waiting
      teachery-sync events show evt_1NispeJDPojXS6LN0igeffJ6
      teachery-sync events replay --status failed
    """


@events.command("list")
@click.option("--status", type=STATUSES)
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
    try:
        account_key = ledger.account_filter(account)
    except ValueError as exc:
        raise Failure(f"bad --account: {exc}") from exc
    since_at = parse_time(since)
    with open_services().pool.connection() as conn:
        rows = ledger.list_events(conn, status=status, type_=type_, since=since_at, account=account_key,
                                  object_id=object_id, limit=limit)
    if as_json:
        click.echo(json.dumps([_event_row(e) for e in rows], indent=2))
        return
    if not rows:
        click.echo("no events")
        return
    listed = table("id", "type", "account", "source", "status", "attempts", "received_at", "next attempt",
                   "last_error")
    for e in rows:
        listed.add_row(e.id, e.type, e.account or "-", e.source, e.status, str(e.attempts), display(e.received_at),
                       display(e.next_attempt_at) or "-", (e.last_error or "")[:80])
    print_wide(listed)
    click.echo(f"{len(rows)} event(s)")


def _event_row(e: ledger.LedgerEvent) -> dict:
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
    with open_services().pool.connection() as conn:
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
    about = table("field", "value", title=f"event {event.id}")
    for field, value in (("type", event.type), ("account", event.account or "platform"), ("source", event.source),
                         ("status", event.status), ("attempts", str(event.attempts)),
                         ("waiting on", event.waiting_on), ("next attempt", display(event.next_attempt_at)),
                         ("received", display(event.received_at)), ("processed", display(event.processed_at)),
                         ("last error", event.last_error)):
        about.add_row(field, value or "-")
    tried = table("#", "at", "kind", "outcome", "error", title="attempts")
    for number, attempt in enumerate(attempts, 1):
        tried.add_row(str(number), display(attempt["at"]), attempt["kind"], attempt["status"], attempt["error"] or "")
    changed = table("record", "id", "change", title="records it changed")
    for change in changes:
        changed.add_row(change["record_type"] or "-", change["record_id"] or "-", change["message"])
    print_wide(about, tried, changed)
    click.echo("(--json shows the payload)")


@events.command("replay")
@click.argument("event_ids", nargs=-1)
@click.option("--status", type=STATUSES, help="replay every event with this status")
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
    if not event_ids and not status and not since:
        raise Failure("name event ids, or give --status or --since")
    services = open_services()
    since_at = parse_time(since)
    if not event_ids:  # every match, read and queued a batch at a time (bounded however many there are)
        require_redis(services)
        bulk = replay_matching(services, status=status, since=since_at)
        click.echo(f"queued {bulk.queued} event(s) for replay"
                   + (f"; {bulk.merged} already had a replay queued" if bulk.merged else ""))
        return
    with services.pool.connection() as conn:
        if not ledger.known(conn, list(event_ids)) and event_ids:
            raise Failure(_not_in_ledger(list(dict.fromkeys(event_ids))))
    require_redis(services)
    done = replay(services, list(event_ids))
    click.echo(f"queued {len(done.queued)} event(s) for replay"
               + (f"; {len(done.merged)} already had a replay queued" if done.merged else ""))
    if done.missing:
        raise Failure(_not_in_ledger(done.missing))


def _not_in_ledger(ids: list[str]) -> str:
    return f"not in the ledger: {', '.join(ids)}"
