"""POST /webhooks/stripe: verify, record, enqueue, answer. Nothing else."""
from __future__ import annotations

import contextvars
import enum
import re

import orjson
import psycopg
import structlog
from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from domain import ledger
from domain.errors import first_line
from domain.ids import STRIPE_ID_TAIL, is_account_id
from webhooks.errors import refused
from webhooks.group_commit import GroupCommit
from webhooks.signature import BadSignature, verify
from workers import telemetry
from workers.queueing import DrainRequests
from workers.services import Services

bp = Blueprint("receiver", __name__)
log = structlog.get_logger(__name__)

_EVENT_ID = re.compile(rf"evt_{STRIPE_ID_TAIL}")
MAX_TYPE_LENGTH = 200
# Unix seconds a datetime can hold (0001-01-01 to 9999-12-31 23:59:59 UTC): PostgreSQL's bigint holds more, and
# an event stored with such a `created` could not be shown as a time (the console's page of it answered 500)
CREATED_RANGE = (-62135596800, 253402300799)


def parse_event(body: bytes) -> dict:
    """The body as a Stripe event dict, or ValueError saying why it is not one."""
    try:
        event = orjson.loads(body)  # NaN, Infinity, lone surrogates, nesting past 1,024: not JSON
    except ValueError:
        raise ValueError("body is not JSON") from None
    if not isinstance(event, dict):
        raise ValueError("body is not a JSON object")
    if not isinstance(event.get("id"), str) or not _EVENT_ID.fullmatch(event["id"]):
        raise ValueError("not a Stripe event: `id` must be an evt_… id")
    if event.get("object") != "event":
        raise ValueError('not a Stripe event: `object` must be "event"')
    if not isinstance(event.get("type"), str) or not event["type"]:
        raise ValueError("not a Stripe event: `type` is missing")
    if len(event["type"]) > MAX_TYPE_LENGTH:
        raise ValueError(f"not a Stripe event: `type` is too long ({MAX_TYPE_LENGTH} characters at most)")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise ValueError("not a Stripe event: `data.object` is missing")
    account = event.get("account")
    if account is not None and not is_account_id(account):
        raise ValueError("not a Stripe event: `account` must be an acct_… id")
    created = event.get("created")
    if created is not None and (not isinstance(created, int) or isinstance(created, bool)
                                or not CREATED_RANGE[0] <= created <= CREATED_RANGE[1]):
        raise ValueError("not a Stripe event: `created` must be an integer timestamp (Unix seconds, years 1-9999)")
    return event


@bp.post("/webhooks/stripe")
def receive_stripe_event():
    """Flask's way in (a chunked body, a query string); webhooks/fast_path.py takes the usual requests."""
    try:
        body = request.get_data(cache=False)  # MAX_CONTENT_LENGTH turns an oversized body into 413
    except RequestEntityTooLarge:
        telemetry.webhook_refused(telemetry.TOO_LARGE)
        raise
    status, answer = current_app.extensions[EXTENSION].receive(body, request.headers.get("Stripe-Signature"),
                                                               g.request_id)
    return jsonify(answer), status


EXTENSION = "teachery.receiver"


class Stored(enum.Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    UNSTARTED = "unstarted"  # a duplicate still `received`: its drain request may have been lost


class Receiver:
    """Verify, record, ask for a drain, answer; framework-free (both ways in use it), one per process.

    The webhooks in flight share one INSERT and one commit (webhooks/group_commit.py), and the group
    asks for a drain once (and not at all when this process asked a moment ago: DrainRequests) and
    writes one "events received" line; each is answered only once its row is durable.
    """

    def __init__(self, services: Services):
        self.services = services
        self._drains = DrainRequests(services.queue)
        self._group = GroupCommit(self._write, after=self._after_group)

    def receive(self, body: bytes, signature: str | None, request_id: str | None = None) -> tuple[int, dict]:
        """(HTTP status, JSON answer); a refusal is logged once, with its reason (never the body), a
        stored event on its group's line with its request's id. Each answer is counted in this process
        (workers/telemetry.py: no round trip)."""
        status, answer, reason = self._receive(body, signature, request_id)
        if reason is not None:  # a stored one was counted with its group
            telemetry.webhook_refused(reason)
        if status == 400:
            refused(400, answer["error"], path="/webhooks/stripe")
        return status, answer

    def _receive(self, body: bytes, signature: str | None, request_id: str | None) -> tuple[int, dict, str | None]:
        """(status, answer, the refusal's reason for the counters; None when stored)."""
        settings = self.services.settings
        try:
            verify(body, signature, settings.webhook_secrets, settings.webhook_tolerance_seconds)
        except BadSignature as exc:
            return 400, {"error": f"signature verification failed: {exc}"}, telemetry.BAD_SIGNATURE
        try:
            event = parse_event(body)
        except ValueError as exc:
            return 400, {"error": str(exc)}, telemetry.NOT_AN_EVENT
        try:
            stored = self._group.submit((event, body, request_id))
        except RecursionError:
            return 400, {"error": "the event is nested too deeply to store"}, telemetry.UNSTORABLE
        except psycopg.DataError as exc:  # e.g. a \u0000 escape, which jsonb refuses
            return 400, {"error": f"the event cannot be stored as given: {first_line(exc)}"}, telemetry.UNSTORABLE
        except (psycopg.Error, TimeoutError) as exc:
            # The web's pool fails fast (domain/db.py): a 503 well inside Stripe's delivery timeout, so it
            # retries, and no thread is held waiting for a database that is down.
            reason = ("event not stored: database unavailable"
                      if isinstance(exc, (psycopg.OperationalError, psycopg.errors.AdminShutdown, TimeoutError))
                      else "event not stored")
            log.error(reason, event_id=event["id"], error=str(exc))
            return 503, {"error": "event could not be stored; retry later"}, telemetry.UNAVAILABLE
        if stored is Stored.NEW:
            return 200, {"received": True}, None
        return 200, {"received": True, "duplicate": True}, None

    def _write(self, items):
        """One statement and one commit for the group, its events counted once (before any answer);
        when PostgreSQL refuses one body (a DataError fails the whole statement), each event again on
        its own, so only that one is refused."""
        outcomes = self._store([(event, body) for event, body, _ in items])
        new = sum(outcome is Stored.NEW for outcome in outcomes)
        telemetry.webhooks_received(new=new, duplicate=sum(isinstance(outcome, Stored) for outcome in outcomes) - new)
        return outcomes

    def _store(self, items):
        with self.services.pool.connection() as conn:
            conn.autocommit = True  # the INSERT is its own transaction: one round trip, not two
            try:
                try:
                    new = ledger.record_events(conn, items)
                except psycopg.DataError:
                    if len(items) == 1:
                        raise
                    return [self._write_one(conn, item) for item in items]
                return self._outcomes(conn, items, new)
            finally:
                conn.autocommit = False

    def _write_one(self, conn, item) -> Stored | Exception:
        try:
            return self._outcomes(conn, [item], ledger.record_events(conn, [item]))[0]
        except psycopg.DataError as exc:
            return exc

    @staticmethod
    def _outcomes(conn, items, new: set[str]) -> list[Stored]:
        ids = [event["id"] for event, _ in items]
        first: dict[str, int] = {}  # an id twice in the group: the first is new, the others duplicates
        for i, event_id in enumerate(ids):
            first.setdefault(event_id, i)
        repeated = [event_id for i, event_id in enumerate(ids) if event_id not in new or first[event_id] != i]
        unstarted = ledger.never_started(conn, repeated) if repeated else set()
        return [Stored.NEW if event_id in new and first[event_id] == i
                else Stored.UNSTARTED if event_id in unstarted else Stored.DUPLICATE
                for i, event_id in enumerate(ids)]

    def _after_group(self, items, outcomes) -> None:
        """Once the group is answered: its one line, and a drain request if an event needs one.

        One line per group rather than per event: a line through the logging chain (structlog's
        processors, two LogRecords, the handler's lock and a flush, contended by every request thread)
        was a quarter of a webhook's CPU in this process. Run outside the leader's request context, so
        the line carries each event's own request id, not the leader's.
        """
        contextvars.Context().run(self._log_and_drain, items, outcomes)

    def _log_and_drain(self, items, outcomes) -> None:
        stored = [(event, request_id, outcome) for (event, _, request_id), outcome in zip(items, outcomes, strict=True)
                  if isinstance(outcome, Stored)]
        if stored:
            log.info("events received", events=[
                {"event_id": event["id"], "type": event["type"], "request_id": request_id,
                 "duplicate": outcome is not Stored.NEW} for event, request_id, outcome in stored])
        if not any(outcome in (Stored.NEW, Stored.UNSTARTED) for outcome in outcomes):
            return
        try:
            self._drains.request()
        except Exception as exc:  # Redis down: the events are stored; the worker's sweep picks them up
            log.warning("events stored but not enqueued", event_ids=[event["id"] for event, _, _ in items],
                        error=str(exc))
