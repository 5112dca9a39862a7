"""Events: the ledger newest first (filters, keyset pages), one event's page with Replay, and Replay all
failed. Replays go through workers.replays.replay, as the admin API's and `teachery-sync events replay`."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flask import Blueprint, flash, redirect, render_template, request, url_for

from domain import ledger
from webhooks import current
from webhooks.auth import listed_account, scope, sees
from webhooks.errors import ApiError
from workers.queueing import RETRY_INTERVALS
from workers.replays import BATCH, replay, replay_all

bp = Blueprint("console_events", __name__)

PAGE_SIZE = 50
MAX_TYPE = 200  # Stripe's event types are short; a longer one is a typo or an attack, not a filter


@dataclass
class Filters:
    """The list's filters as the form sent them (`form`, shown again) and as the ledger takes them."""
    form: dict[str, str] = field(default_factory=dict)
    status: str | None = None
    type_: str | None = None
    account: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: tuple[datetime, str] | None = None
    errors: list[str] = field(default_factory=list)

    def query(self, **extra) -> dict[str, str]:
        """The filters as a query string's arguments (empty ones left out), plus `extra`."""
        return {k: v for k, v in self.form.items() if v} | extra


def _time(text: str, name: str, errors: list[str]) -> datetime | None:
    """A time from the form (`datetime-local`'s 2026-12-02T03:04, or ISO 8601), read as UTC unless it says."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        errors.append(f"“{name}” must be a date and time such as 2026-12-02T03:04 (UTC); “{text}” is not one.")
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def read_filters(args) -> Filters:
    """The filters from a query string, each bad value explained in `errors` (and then not applied)."""
    names = ("status", "type", "account", "from", "to")
    f = Filters(form={name: args.get(name, "").strip() for name in names})
    errors = f.errors
    status = f.form["status"]
    if status and status not in ledger.STATUSES:
        errors.append(f"Status must be one of {', '.join(ledger.STATUSES)}; “{status}” is not.")
    else:
        f.status = status or None
    type_ = f.form["type"]
    if len(type_) > MAX_TYPE:
        errors.append(f"Type is too long ({MAX_TYPE} characters at most): an event type looks like charge.refunded.")
    else:
        f.type_ = type_ or None
    account = f.form["account"]
    if account:
        try:
            f.account = ledger.account_filter(account)
        except ValueError:
            errors.append(f"Account must be an acct_… id or “{ledger.PLATFORM_NAME}”; “{account}” is neither.")
    f.since = _time(f.form["from"], "From", errors)
    f.until = _time(f.form["to"], "To", errors)
    if f.since and f.until and f.since >= f.until:
        errors.append("“From” must be earlier than “To”.")
        f.since = f.until = None
    before_at, before_id = args.get("before", ""), args.get("before_id", "")
    if before_at or before_id:
        try:
            at = datetime.fromisoformat(before_at)
        except ValueError:
            at = None
        if at is None or at.tzinfo is None or not before_id or len(before_id) > 255:
            errors.append("That “Older” link is damaged: the list starts again from the newest events.")
        else:
            f.before = (at, before_id)
    return f


@bp.get("/events", endpoint="ledger")
def ledger_page():
    f = read_filters(request.args)
    events = []
    account, any_listed = listed_account(f.account)  # a scoped token: its account's events only
    if not f.errors and any_listed:
        with current.services().pool.connection() as conn:
            events = ledger.list_events(conn, status=f.status, type_=f.type_, account=account, since=f.since,
                                        until=f.until, before=f.before, limit=PAGE_SIZE + 1)
    older = None
    if len(events) > PAGE_SIZE:
        events = events[:PAGE_SIZE]
        last = events[-1]
        older = url_for("console_events.ledger", **f.query(before=last.received_at.isoformat(), before_id=last.id))
    filtered = any(f.form.values())
    return render_template("console/events.html", events=events, f=f, older=older, statuses=ledger.STATUSES,
                           filtered=filtered, deeper=f.before is not None,
                           newest=url_for("console_events.ledger", **f.query())), 400 if f.errors else 200


def _event_or_404(conn, event_id: str) -> ledger.LedgerEvent:
    event = ledger.get_event(conn, event_id, with_payload=True)
    if event is None or not sees(event.account):  # another account's: as if it were not there
        raise ApiError(f"event {event_id} is not in the ledger", 404)
    return event


@bp.get("/events/<id:event_id>", endpoint="event")
def event_page(event_id: str):
    with current.services().pool.connection() as conn:
        event = _event_or_404(conn, event_id)
        changes = ledger.changes_of(conn, event_id)
        attempts = ledger.attempts_log(conn, event_id)
    payload = json.dumps(event.payload, indent=2, ensure_ascii=False)
    return render_template("console/event.html", event=event, changes=changes, attempts=attempts, payload=payload,
                           created=datetime.fromtimestamp(event.created, UTC) if event.created else None,
                           automatic_limit=len(RETRY_INTERVALS) + 1)


@bp.post("/events/<id:event_id>/replay", endpoint="replay")
def replay_event(event_id: str):
    """The admin API's replay: an extra attempt, queued (merged into a replay still waiting to run)."""
    services = current.services()
    with services.pool.connection() as conn:
        event = ledger.get_event(conn, event_id)
    if event is None or not sees(event.account):
        raise ApiError(f"event {event_id} is not in the ledger", 404)
    done = replay(services, [event_id])  # Redis down: the 503 page, and nothing changed
    if done.merged:
        flash("A replay of this event was already queued and has not run yet: this one merged into it.", "info")
    else:
        flash("Replay queued: a worker applies the event once more in a moment. Reload to see the attempt.",
              "success")
    return redirect(url_for("console_events.event", event_id=event_id))


@bp.get("/events/replay-failed", endpoint="replay_failed_form")
def replay_failed_form():
    with current.services().pool.connection() as conn:
        counts = ledger.status_counts(conn, account=scope())
    return render_template("console/events_replay_failed.html", failed=counts.get(ledger.EventStatus.FAILED.value, 0),
                           scope=scope())


@bp.post("/events/replay-failed", endpoint="replay_failed")
def replay_failed():
    """`teachery-sync events replay --status failed`: a replay of every failed event, through the same
    function. `expected` is the count the person confirmed: when it changed since, nothing is queued."""
    services = current.services()
    failed = ledger.EventStatus.FAILED.value
    with services.pool.connection() as conn:
        count = ledger.count_matching(conn, status=failed, account=scope())
    expected = request.form.get("expected", "")
    # ASCII digits only: str.isdigit also takes "²" (which int() refuses) and "١" (which int() reads as 1)
    if re.fullmatch(r"[0-9]{1,18}", expected) is None or int(expected) != count:
        flash(f"The number of failed events changed since the page was shown (now {count}): nothing was "
              "replayed. Check the count and confirm again.", "error")
        return redirect(url_for("console_events.replay_failed_form"))
    if not count:
        flash("There are no failed events: nothing to replay.", "info")
        return redirect(url_for("console_events.replay_failed_form"))
    done = replay_all(services, status=failed, account=scope(), expected=count)
    if done.in_background:
        message = (f"A worker is queueing replays of the {count:,} failed events, {BATCH:,} at a time "
                   "(a bulk replay is never held by one request)")
    else:
        message = f"Queued {done.queued} failed event(s) for replay"
        if done.merged:
            message += f"; {done.merged} already had a replay queued (merged)"
    flash(message + ". Their statuses change as the workers apply them.", "success")
    return redirect(url_for("console_events.ledger", status=ledger.EventStatus.FAILED.value))

