"""The commands the service layer takes (COMMAND_HANDLERS in command_table.py maps each to its handler),
and the request bodies of the admin actions, validated by pydantic.

An admin command carries what the client asked (`asked`, a validated body), the record it names, its
idempotency key and the name of the admin token that sent it. A body error is a CommandRefused whose
message names the field and what it must be, as the field's description says.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from domain.ids import STRIPE_ID_TAIL
from domain.reconciliations import Scope
from domain.times import parse_iso
from workers.stripe_objects import PAUSE_BEHAVIORS, REFUND_REASONS

# Written so that Python and ECMAScript (the OpenAPI document's readers) agree: no spaces, no controls.
_PART = r"[^@\s\x00-\x1f\x7f-\x9f\ufeff"  # an email's characters: not @, a space or a control (open class)
_EMAIL = re.compile(rf"^{_PART}]+@{_PART}]+\.{_PART}.]+$")


class CommandRefused(Exception):
    """The command cannot be done as asked; message and HTTP status for the answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


# --- request bodies ------------------------------------------------------------------------------

def _rule(message: str) -> PydanticCustomError:
    """A broken rule whose message is its own (other errors say what the field must be)."""
    return PydanticCustomError("rule", message)


def _text(value: str) -> str:
    if not value.strip() or "\x00" in value:
        raise ValueError("blank or holding NUL")
    return value.strip()


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise _rule("must be an email address")
    return value


def _future(value: str) -> str:
    """An ISO 8601 time (kept as given) after now: a pause cannot resume in the past."""
    if parse_iso(value).timestamp() <= time.time():
        raise _rule("must be in the future")
    return value


def _iso_time(value: str | None) -> str | None:
    """An ISO 8601 time (kept as given) or None."""
    if value is not None:
        parse_iso(value)
    return value


def _text_of(limit: int, pattern: str = r"^[^\x00]*[^\s\x00][^\x00]*$"):
    """The rule, and for the OpenAPI document the same rule as a pattern (checked by the validators)."""
    return Field(max_length=limit, json_schema_extra={"pattern": pattern},
                 description=f"a non-empty string of at most {limit} characters")


def _one_of(choices: tuple[str, ...]):
    return Field(description=f"one of {', '.join(choices)}")


# Fields may be left out, never null: a default of None that their type does not allow.
Name = Annotated[str, _text_of(256), AfterValidator(_text)]
Email = Annotated[str, _text_of(512, _EMAIL.pattern), AfterValidator(_text), AfterValidator(_email)]
def _whole(value):
    """JSON's 4900.0 is the whole number 4900 (as JSON Schema reads it); a fraction stays a float, refused."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Amount = Annotated[int, Field(gt=0, description="a positive whole number (minor units, e.g. cents)"),
                   BeforeValidator(_whole)]
FutureTime = Annotated[str, Field(description="an ISO 8601 time in the future, e.g. 2030-02-01T00:00:00Z",
                                  json_schema_extra={"format": "date-time"}), AfterValidator(_future)]


def _stripe_id(prefix: str, kind: str):
    return Field(pattern=rf"^{prefix}{STRIPE_ID_TAIL}$", description=f"a Stripe {kind} id ({prefix}…) or null")


class Body(BaseModel):
    """A request body: a JSON object of known fields, each of its type (no coercion)."""
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @classmethod
    def parse(cls, body) -> Body:
        """The body validated; CommandRefused (400) saying what is wrong."""
        if not isinstance(body, dict):
            raise CommandRefused("the body must be a JSON object")
        try:
            return cls.model_validate(body)
        except ValidationError as exc:
            raise CommandRefused(cls._message(exc.errors())) from None

    @classmethod
    def _message(cls, errors: list) -> str:
        unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
        if unknown:
            return f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(cls.model_fields) or 'none'}"
        missing = [str(e["loc"][0]) for e in errors if e["type"] == "missing"]
        if missing:
            return f"missing field(s): {', '.join(missing)}"
        first = errors[0]
        if not first["loc"]:
            return first["msg"]
        name = str(first["loc"][0])
        return f"{name} {first['msg'] if first['type'] == 'rule' else 'must be ' + cls.model_fields[name].description}"

    def given(self) -> dict:
        """The fields the client sent, as validated."""
        return self.model_dump(exclude_unset=True)


class NoBody(Body):
    pass


class CustomerChanges(Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})
    name: Name = None
    email: Email = None

    @model_validator(mode="after")
    def _something(self):
        if not self.model_fields_set:
            raise _rule("nothing to change: give name and/or email")
        return self


class RefundAsked(Body):
    amount: Amount = None  # what is left, when not given
    reason: Annotated[Literal[REFUND_REASONS], _one_of(REFUND_REASONS)] = None


class CancelAsked(Body):
    at_period_end: Annotated[bool, Field(description="true or false")]


class PauseAsked(Body):
    behavior: Annotated[Literal[PAUSE_BEHAVIORS], _one_of(PAUSE_BEHAVIORS)]
    resumes_at: FutureTime = None


class ReconciliationAsked(Body):
    """POST /admin/api/reconciliations and `teachery-sync reconcile`: a null field is as if not given."""
    account: Annotated[str | None, _stripe_id("acct_", "account")] = None  # None: the platform and every account
    customer: Annotated[str | None, _stripe_id("cus_", "customer")] = None
    since: Annotated[str | None, Field(description="an ISO 8601 time, e.g. 2026-11-01T00:00:00Z",
                                       json_schema_extra={"format": "date-time"}),
                     AfterValidator(_iso_time)] = None
    dry_run: Annotated[bool | None, Field(description="true or false")] = None

    @property
    def scope(self) -> Scope:
        return Scope(self.account, self.customer, parse_iso(self.since) if self.since else None)


# --- admin commands ------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class AdminCommand:
    """An admin request: applied once per idempotency key (a retry gets the first answer)."""
    kind: ClassVar[str]  # as recorded in admin_actions
    target: str  # the record acted on: our customer id, a Stripe charge or subscription id
    idempotency_key: str  # ours, sent to Stripe: `teachery-…`
    actor: str  # the admin token's name
    asked: Body = NoBody()
    scope: str | None = None  # the one account the actor may act on ('' the platform, acct_…); None: every one

    @property
    def params(self) -> dict:
        """What was asked, as the admin_actions row keeps it: a retry under the same key asks the same."""
        return self.asked.given()


class EditCustomer(AdminCommand):
    kind = "customer.edit"
    asked: CustomerChanges


@dataclass(frozen=True, kw_only=True)
class GrantCourse(AdminCommand):
    kind = "course.grant"
    grant: ClassVar[bool] = True
    course_id: str

    @property
    def params(self) -> dict:
        return {"course_id": self.course_id}


class RevokeCourse(GrantCourse):
    kind = "course.revoke"
    grant = False


class SendWelcomeEmail(AdminCommand):
    kind = "customer.welcome_email"


class RefundPayment(AdminCommand):
    kind = "payment.refund"
    asked: RefundAsked


class CancelSubscription(AdminCommand):
    kind = "subscription.cancel"
    asked: CancelAsked


class PauseSubscription(AdminCommand):
    kind = "subscription.pause"
    asked: PauseAsked


class ResumeSubscription(AdminCommand):
    kind = "subscription.resume"


# --- commands of the worker and the command line ---------------------------------------------------

Report = Callable[[str, int, "int | None"], None]  # how a caller follows a long command: (what, done, of)


def quiet(*_) -> None:
    """A Report that shows nothing."""


@dataclass(frozen=True)
class FixObject:
    """Apply Stripe's current object over our record of it (a reconciliation fix)."""
    account: str  # storage key: '' is the platform
    kind: str  # customer | charge | refund | subscription | payment (a placeholder: obj is its intent or invoice)
    obj: dict


@dataclass(frozen=True)
class Backfill:
    """Fetch the events Stripe kept since `since` and feed the missed ones through the pipeline."""
    since: datetime
    account: str | None = None  # acct_…; None: the platform and every account we know
    now: datetime | None = None
