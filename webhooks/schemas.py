"""The read API's shapes in one place: the query strings it accepts and the JSON it answers.

Pydantic models, so that one description serves the checks, the answers and (later) an OpenAPI
document. Field order is answer order. A query value that breaks a rule answers 400 with that rule's
message (webhooks/parsing.py `from_query`); an answer is `Model.model_validate(record).answer()`,
sent by Flask's JSON provider as before. The webhook path (webhooks/fast_path.py) does without.
"""
from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from domain import ledger
from domain.accounts import to_api
from domain.ids import STRIPE_ID_TAIL, is_account_id
from domain.times import iso, parse_iso

# --- query strings ----------------------------------------------------------------------------------


def Query(parse=str, *, empty=None, message: str | None = None):  # noqa: N802 - read as a type's part
    """A query-string value: empty is not given (`empty`), else `parse(text)`; a ValueError it raises
    answers 400 with `message`, else with its own."""
    def check(text):
        if not text:
            return empty
        try:
            return parse(text)
        except ValueError as exc:
            raise ValueError(message or str(exc)) from None
    return BeforeValidator(check)


def Doc(**schema):  # noqa: N802 - read as a type's part
    """How the OpenAPI document describes a query value (the Query's parse is what checks it)."""
    return Field(json_schema_extra=schema)


ACCOUNT_PATTERN = rf"^acct_{STRIPE_ID_TAIL}$"
NO_NUL = r"^[^\x00]*$"  # no query value may hold a NUL (webhooks/app.py)
ISO_TIME = {"type": "string", "format": "date-time", "description": "an ISO 8601 time, e.g. 2026-11-01T00:00:00Z"}
LIMIT = {"type": "integer", "minimum": 1, "maximum": 1000}


def kept_if(test):
    """A `parse` that keeps the text when test(text) holds."""
    def parse(text):
        if not test(text):
            raise ValueError(text)
        return text
    return parse


def _limit(text: str) -> bool:
    """Digits 0-9 only: int() would also take "١٢", " 1" or "1_0"."""
    return re.fullmatch(r"[0-9]{1,9}", text) is not None and 1 <= int(text) <= 1000


class EventFilters(BaseModel):
    """GET /admin/api/events: newest first, `limit` of them, filtered by whatever is given."""
    status: Annotated[str | None, Query(kept_if(ledger.LIST_STATUSES.__contains__),
                                        message=f"status must be one of {', '.join(ledger.LIST_STATUSES)}"),
                      Doc(type="string", enum=list(ledger.LIST_STATUSES))] = None
    limit: Annotated[int, Query(kept_if(_limit), empty=100,
                                message="limit must be a whole number from 1 to 1000, in digits 0-9"),
                      Doc(**LIMIT)] = 100
    since: Annotated[datetime | None, Query(parse_iso,
                                            message="since must be an ISO 8601 time, e.g. 2026-11-01T00:00:00Z"),
                     Doc(**ISO_TIME)] = None
    account: Annotated[str | None, Query(ledger.account_filter),  # acct_… or platform; gives the stored key
                       Doc(type="string", pattern=rf"{ACCOUNT_PATTERN}|^platform$",
                           description="acct_… or platform")] = None
    type: Annotated[str | None, Query(),
                    Doc(type="string", pattern=NO_NUL, description="an event type, e.g. charge.refunded")] = None
    object_id: Annotated[str | None, Query(),  # see ledger.OBJECT_FIELDS
                         Doc(type="string", pattern=NO_NUL, description="a Stripe object id the event names")] = \
        Field(None, alias="object")


class CustomerSearch(BaseModel):
    """GET /admin/api/customers: name or email containing `q`, case-insensitively."""
    q: Annotated[str, Query(kept_if(lambda q: len(q) <= 200), empty="",
                            message="q is too long (200 characters at most)"),
                 Doc(type="string", maxLength=200, pattern=NO_NUL, description="part of a name or email")] = ""


class StripeCustomerQuery(BaseModel):
    """GET /admin/api/stripe-customers/{cus_…}: the platform's customer unless `account` names another."""
    account: Annotated[str | None, Query(kept_if(is_account_id), message="account must be an acct_… id"),
                       Doc(type="string", pattern=ACCOUNT_PATTERN, description="a connected account (acct_…)")] = None


# --- answers ------------------------------------------------------------------------------------------

IsoTime = Annotated[datetime | None, PlainSerializer(iso, return_type=str | None)]
ApiAccount = Annotated[str | None, BeforeValidator(to_api)]  # the platform's '' is shown as null


class Answer(BaseModel):
    """An answer, filled from our records (dataclasses, rows as dicts)."""
    model_config = ConfigDict(from_attributes=True)

    def answer(self, **options) -> dict:
        """The body, ready for JSON (times as ISO 8601 UTC)."""
        return self.model_dump(mode="json", **options)


class Exact(Answer):
    """Filled from JSON built in SQL: a key the model does not name is a mistake, not something to drop."""
    model_config = ConfigDict(from_attributes=True, extra="forbid")


class CustomerSummary(Exact):
    id: str
    account: str | None
    stripe_customer_id: str
    name: str | None
    email: str | None


class CustomerList(Answer):
    customers: list[CustomerSummary]


class Enrollment(Exact):
    course_id: str
    access: str  # active, revoked
    granted_at: str
    revoked_at: str | None


class Refund(Exact):
    stripe_refund_id: str
    amount: int
    status: str
    reason: str | None
    origin: str  # stripe, teachery


class Payment(Exact):
    stripe_charge_id: str | None
    stripe_payment_intent_id: str | None
    stripe_invoice_id: str | None
    stripe_subscription_id: str | None
    course_id: str | None
    amount: int
    currency: str | None
    amount_refunded: int
    status: str
    created: str | None
    refunds: list[Refund]


class Subscription(Exact):
    stripe_subscription_id: str
    course_id: str | None
    status: str
    pause_collection: dict[str, Any] | None
    cancel_at_period_end: bool
    cancel_at: str | None
    canceled_at: str | None
    ended_at: str | None
    current_period_end: str | None


class Activity(Exact):
    at: str
    kind: str
    message: str
    origin: str  # stripe, teachery, reconciliation
    stripe_event_id: str | None
    actor: str | None


class Profile(CustomerSummary):
    """GET /admin/api/customers/{id}, /stripe-customers/{cus_…}: the customer and everything about them
    (built in one query, domain/sql/profile.sql, times already ISO 8601)."""
    deleted_in_stripe: bool
    enrollments: list[Enrollment]
    payments: list[Payment]
    subscriptions: list[Subscription]
    activity: list[Activity]


class EventSummary(Answer):
    """An event of GET /admin/api/events."""
    id: str
    type: str
    account: ApiAccount
    status: str
    attempts: int
    received_at: IsoTime
    last_error: str | None


class EventList(Answer):
    events: list[EventSummary]


class Change(Answer):
    """A record an event changed (from the activity it wrote)."""
    record_type: str | None
    record_id: str | None
    kind: str
    message: str
    customer_id: str | None


class Attempt(Answer):
    at: IsoTime
    kind: str  # automatic, wake, replay
    status: str
    error: str | None


class EventDetail(EventSummary):
    """GET /admin/api/events/{id}: the event, its payload, its attempts and the records it changed."""
    created: int
    api_version: str | None
    processed_at: IsoTime
    waiting_on: str | None
    source: str
    next_attempt_at: IsoTime
    payload: dict[str, Any]
    changes: list[Change]
    attempts_log: list[Attempt]


class ReplayAccepted(Answer):
    """POST /admin/api/events/{id}/replay (202): `merged` when a replay of it was already queued."""
    id: str
    status: str
    merged: bool


class ReportScope(Answer):
    account: str | None
    customer: str | None
    since: IsoTime


class Drift(Answer):
    """A field where our record and Stripe's object differ."""
    object: str | None = None
    field: str | None = None
    local: Any = None
    stripe: Any = None
    fixed: bool | None = None


def _drift_limit(text: str) -> int:
    if not _limit(text):
        raise ValueError(text)
    return int(text)


def drift_cursor(seq: int) -> str:
    """The opaque `next_drift_after` of a report page that ends at drift item `seq`."""
    return base64.urlsafe_b64encode(f"drift:{seq}".encode()).decode().rstrip("=")


def drift_seq(cursor: str) -> int:
    """The drift item a `drift_after` cursor names (ValueError when it is not one this API answered)."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise ValueError(cursor) from None
    match = re.fullmatch(r"drift:([0-9]{1,18})", text)
    if match is None:
        raise ValueError(cursor)
    return int(match.group(1))


class DriftPage(BaseModel):
    """GET /admin/api/reconciliations/{id}: which page of the drift (`seq` order)."""
    limit: Annotated[int, Query(_drift_limit, empty=500,
                                message="limit must be a whole number from 1 to 1000, in digits 0-9"),
                      Doc(**LIMIT)] = 500
    drift_after: Annotated[int, Query(drift_seq, empty=0, message="drift_after must be a next_drift_after "
                                      "value this API answered"),
                           Doc(type="string", description="the next_drift_after of the page before")] = 0


class ReconciliationReport(Answer):
    """GET /admin/api/reconciliations/{id}: the run's scope, progress and a page of its drift; `error` when
    it failed; `rate` (objects/s) and `eta_seconds` while it runs."""
    id: str
    status: str  # queued, running, succeeded, failed
    dry_run: bool
    scope: ReportScope
    started_at: IsoTime
    finished_at: IsoTime
    checked: int
    fixed: int
    drift: list[Drift] = []
    error: str | None = None
    drift_count: int = 0
    next_drift_after: str | None = None  # the next page's drift_after; null on the last page
    progress: dict[str, dict[str, int]] = {}
    resumed: int = 0
    trigger: str = "admin"
    applies: str | None = None  # the dry run this run applies
    rate: float | None = None
    eta_seconds: float | None = None

    def answer(self, **options) -> dict:
        hidden = set() if self.status == "failed" else {"error"}
        if self.status != "running":
            hidden |= {"rate", "eta_seconds"}
        return super().answer(exclude=hidden, **options)


# --- the actions' answers ------------------------------------------------------------------------------


class EnrollmentAnswer(Exact):
    """POST /customers/{id}/courses/{course_id}/revoke · /grant."""
    enrollment: Enrollment


class WelcomeEmail(Exact):
    outbox_id: int
    status: str  # queued
    to: str
    subject: str
    login_link: str
    courses: list[str]


class WelcomeEmailAnswer(Exact):
    """POST /customers/{id}/welcome-email: the email, queued in the outbox."""
    email: WelcomeEmail


class Links(Exact):
    """GET /customers/{id}/links: Teachery's course links for the customer (the reset link lasts 24 hours)."""
    login: str
    password_reset: str
    billing: str
    cancel_subscription: str


class ActionRefund(Exact):
    stripe_refund_id: str
    stripe_charge_id: str
    amount: int
    currency: str | None
    status: str  # pending until Stripe confirms
    reason: str | None
    origin: str


class RefundedPayment(Exact):
    stripe_charge_id: str
    amount: int
    currency: str | None
    amount_refunded: int
    status: str


class RefundAnswer(Exact):
    """POST /payments/{ch_id}/refund: the refund as Stripe first answered, and the payment now."""
    refund: ActionRefund
    payment: RefundedPayment


class SubscriptionAnswer(Exact):
    """POST /subscriptions/{sub_id}/cancel · /pause · /resume: the subscription as it now stands."""
    subscription: Subscription


class RunStarted(Exact):
    """POST /reconciliations, POST /reconciliations/{id}/apply: the queued run's id."""
    id: str


class ErrorAnswer(Exact):
    """Every error answer."""
    error: str
    id: str | None = None  # 409 of a busy scope: the run already queued or running
