"""The admin actions: one plain function per action, taking its dependencies (the pool, the Stripe API)
and returning the answer as (HTTP status, JSON body).

An action is recorded in `admin_actions` under its idempotency key (`teachery-…`) before anything
happens. Stripe is called outside any transaction; nothing changes locally when the call fails. Its
answer is then applied at once, atomically, through the snapshot functions the event handlers use,
in an AdminContext (origin "teachery", the action id in every activity message). The event Stripe
sends afterwards carries the same idempotency key, so it is logged as ours too, and being newer it
still wins over the answer applied here.
"""
from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from domain import admin_actions, customers, enrollments, links, outbox, payments, profiles, subscriptions
from domain.accounts import to_api
from domain.ids import ID_RULE, is_id
from domain.versions import FETCHED
from workers.context import EventContext
from workers.handlers.customers import snapshot_customer
from workers.handlers.refunds import REFUND_STATUSES, refund_status, snapshot_refund
from workers.handlers.subscriptions import ENDED, snapshot_subscription
from workers.stripe_api import NotFound, StripeApi, StripeRejected, StripeUnavailable

REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")  # Stripe's enum for POST /v1/refunds
PAUSE_BEHAVIORS = ("void", "keep_as_draft", "mark_uncollectible")
WELCOME_SUBJECT = "Welcome to Teachery: your course login"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


class ActionError(Exception):
    """The action cannot be done as asked; message and HTTP status for the answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


@dataclass
class AdminContext(EventContext):
    """An EventContext for an admin action: no Stripe event, origin teachery, the action and its actor
    (the admin token's name) in the log."""
    action_id: str = ""
    actor: str | None = None

    def log(self, customer_id, kind, message, record_type, record_id) -> None:
        super().log(customer_id, kind, f"{message} (admin action {self.action_id})", record_type, record_id)
        self.entries[-1] = dataclasses.replace(self.entries[-1], actor=self.actor)


@dataclass(frozen=True)
class Request:
    kind: str
    target: str
    account: str
    params: dict
    idempotency_key: str
    actor: str


Answer = tuple[int, dict]


def _perform(pool, stripe: StripeApi, req: Request, apply: Callable[[AdminContext, dict | None], Answer],
             call: Callable[[], dict] | None = None, created: int = 0) -> Answer:
    """Record the action, make its Stripe call (if any) outside a transaction, apply the result atomically."""
    action, replayed = _start(pool, req)
    if replayed is not None:
        return replayed
    answer = None
    if call is not None:
        try:
            answer = call()
        except StripeUnavailable as exc:
            _give_up(pool, action.id, "unavailable", 503, str(exc))
        except NotFound as exc:
            _give_up(pool, action.id, "rejected", 409, f"Stripe has no such object: {exc}")
        except StripeRejected as exc:
            _give_up(pool, action.id, "rejected", exc.status if exc.status and 400 <= exc.status < 500 else 400,
                     str(exc))
    try:
        with pool.connection() as conn:
            event = {"id": None, "account": to_api(req.account), "created": created,
                     "type": f"admin.{req.kind}", "data": {"object": answer or {}}}
            ctx = AdminContext(conn, event, stripe, origin="teachery", action_id=action.id, actor=req.actor)
            status, body = apply(ctx, answer)
            ctx.flush()
            admin_actions.finish(conn, action.id, "succeeded", status_code=status, response=body)
    except ActionError as exc:
        _give_up(pool, action.id, "rejected", exc.status, exc.message)
    except Exception as exc:
        _record(pool, action.id, "failed", 500, f"{type(exc).__name__}: {exc}")
        raise
    return status, body


def _start(pool, req: Request) -> tuple[admin_actions.AdminAction, Answer | None]:
    """The action's row, new or (same idempotency key) the earlier one; with its answer when already done."""
    with pool.connection() as conn:
        action = admin_actions.start(conn, kind=req.kind, target=req.target, account=req.account,
                                     params=req.params, idempotency_key=req.idempotency_key, actor=req.actor)
        if action is not None:
            return action, None
        earlier = admin_actions.lock_by_key(conn, req.idempotency_key)
        if (earlier.kind, earlier.target, earlier.params) != (req.kind, req.target, req.params):
            raise ActionError("this Idempotency-Key was already used for a different admin request", 409)
        if earlier.outcome == "succeeded":
            return earlier, (earlier.status_code, earlier.response)
        if earlier.outcome == "rejected":
            raise ActionError(earlier.error or "rejected", earlier.status_code or 400)
        if earlier.outcome == "started":
            raise ActionError("an admin request with this Idempotency-Key is still in progress", 409)
        admin_actions.restart(conn, earlier.id)  # unavailable or failed before: try again
        return earlier, None


def _answered_before(pool, kind: str, target: str, given: dict, idempotency_key: str) -> Answer | None:
    """The first answer to this request when its key was already used for it (a client's retry);
    409 when the key was used for a different request (`given`: the fields the client sent).

    Checked before the request is validated against the current records: the first request changed
    them (a refund made, a subscription canceled), so checking a retry against them would refuse it.
    """
    with pool.connection() as conn:
        earlier = admin_actions.lock_by_key(conn, idempotency_key)
    if earlier is None or earlier.outcome != "succeeded":
        return None
    if (earlier.kind, earlier.target) != (kind, target) or any(
            earlier.params.get(name) != value for name, value in given.items()):
        raise ActionError("this Idempotency-Key was already used for a different admin request", 409)
    return earlier.status_code, earlier.response


def _record(pool, action_id: str, outcome: str, status: int, message: str) -> None:
    with pool.connection() as conn:
        admin_actions.finish(conn, action_id, outcome, status_code=status, error=message)


def _give_up(pool, action_id: str, outcome: str, status: int, message: str):
    _record(pool, action_id, outcome, status, message)
    raise ActionError(message, status)


# --- input --------------------------------------------------------------------------------------

def _fields(body, validators: dict, required: tuple = ()) -> dict:
    """The body's fields, each checked by its validator; unknown or missing ones are a 400."""
    if not isinstance(body, dict):
        raise ActionError("the body must be a JSON object")
    unknown = sorted(set(body) - set(validators))
    if unknown:
        raise ActionError(f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(validators) or 'none'}")
    missing = [name for name in required if name not in body]
    if missing:
        raise ActionError(f"missing field(s): {', '.join(missing)}")
    return {name: validators[name](name, value) for name, value in body.items()}


def _text(limit: int):
    def check(name, value):
        if not isinstance(value, str) or not value.strip() or len(value) > limit or "\x00" in value:
            raise ActionError(f"{name} must be a non-empty string of at most {limit} characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ActionError(f"{name} is not valid Unicode text: it holds a lone surrogate") from None
        return value.strip()
    return check


def _email(name, value):
    value = _text(512)(name, value)
    if not _EMAIL.match(value):
        raise ActionError(f"{name} must be an email address")
    return value


def _positive_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ActionError(f"{name} must be a positive whole number (minor units, e.g. cents)")
    return value


def _one_of(choices: tuple):
    def check(name, value):
        if value not in choices:
            raise ActionError(f"{name} must be one of {', '.join(choices)}")
        return value
    return check


def _bool(name, value):
    if not isinstance(value, bool):
        raise ActionError(f"{name} must be true or false")
    return value


def _iso_time(name, value):
    """An ISO 8601 time as given (naive means UTC); checked here, sent to Stripe as Unix seconds."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise ActionError(f"{name} must be an ISO 8601 time, e.g. 2025-02-01T00:00:00Z")
    return value


def _future_time(name, value):
    """An ISO 8601 time after now: a pause cannot resume in the past."""
    value = _iso_time(name, value)
    if _epoch(value) <= time.time():
        raise ActionError(f"{name} must be in the future")
    return value


def _epoch(value: str) -> int:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp())


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if at else None


# --- lookups ------------------------------------------------------------------------------------

def _customer(pool, customer_id: str) -> customers.Customer:
    with pool.connection() as conn:
        row = customers.get(conn, customer_id)
    if row is None:
        raise ActionError(f"customer {customer_id} not found", 404)
    return row


def _only(rows: list, what: str):
    """The one row of a Stripe id looked up in every account."""
    if not rows:
        raise ActionError(f"{what} not found", 404)
    if len(rows) > 1:
        raise ActionError(f"{what} is known in several accounts", 409)
    return rows[0]


# --- customers ----------------------------------------------------------------------------------

def edit_customer(pool, stripe: StripeApi, customer_id: str, body, *, idempotency_key: str,
                  actor: str) -> Answer:
    """PATCH /customers/{id}: send the new name/email to the Stripe customer, then record Stripe's answer."""
    changes = _fields(body, {"name": _text(256), "email": _email})
    if not changes:
        raise ActionError("nothing to change: give name and/or email")
    customer = _customer(pool, customer_id)
    if earlier := _answered_before(pool, "customer.edit", customer.id, changes, idempotency_key):
        return earlier
    if customer.deleted_in_stripe:
        raise ActionError(f"customer {customer_id} was deleted in Stripe and cannot be edited there", 409)

    def call():
        return stripe.request("post", f"/v1/customers/{customer.stripe_customer_id}",
                              account=to_api(customer.account), idempotency_key=idempotency_key, **changes)

    def apply(ctx, answer):
        snapshot_customer(ctx, answer, (customer.stripe_created, FETCHED))
        ctx.flush()
        return 200, profiles.profile_by_id(ctx.conn, customer.id)

    req = Request("customer.edit", customer.id, customer.account, changes, idempotency_key, actor)
    return _perform(pool, stripe, req, apply, call, customer.stripe_created)


def set_course_access(pool, stripe: StripeApi, customer_id: str, course_id: str, *, grant: bool,
                      idempotency_key: str, actor: str) -> Answer:
    """Course access off (revoke) or back on (grant, creating the enrollment if need be); local only:
    refunds and subscriptions are untouched (rule 3). Doing it twice is fine."""
    if not is_id(course_id):
        raise ActionError(f"course_id must be {ID_RULE}")
    customer = _customer(pool, customer_id)
    verb = "granted" if grant else "revoked"

    def apply(ctx, _):
        if grant:
            row, changed = enrollments.grant(ctx.conn, customer.account, customer.id, course_id)
        else:
            row, changed = enrollments.revoke(ctx.conn, customer.id, course_id)
            if row is None:
                raise ActionError(f"customer {customer_id} has no enrollment in course {course_id}", 404)
        if changed:
            ctx.log(customer.id, f"enrollment.{verb}", f"Access to course {course_id} {verb}", "enrollment",
                    course_id)
        return 200, {"enrollment": {"course_id": row.course_id, "access": row.access,
                                    "granted_at": _iso(row.granted_at), "revoked_at": _iso(row.revoked_at)}}

    req = Request(f"course.{'grant' if grant else 'revoke'}", customer.id, customer.account,
                  {"course_id": course_id}, idempotency_key, actor)
    return _perform(pool, stripe, req, apply)


def send_welcome_email(pool, stripe: StripeApi, base_url: str, customer_id: str, *,
                       idempotency_key: str, actor: str) -> Answer:
    """Queue the welcome email with the course login link in the outbox (Teachery's mailer sends it)."""
    customer = _customer(pool, customer_id)
    if not customer.email:
        raise ActionError(f"customer {customer_id} has no email address", 409)
    login = links.login_link(base_url, customer.id)

    def apply(ctx, _):
        courses = enrollments.active_courses(ctx.conn, customer.id)
        outbox_id = outbox.add(ctx.conn, kind="welcome_email", customer_id=customer.id, to_address=customer.email,
                               subject=WELCOME_SUBJECT, admin_action_id=ctx.action_id,
                               payload={"name": customer.name, "login_link": login, "courses": courses})
        ctx.log(customer.id, "email.welcome", f"Welcome email with the login link queued for {customer.email}"
                f" (outbox {outbox_id})", "outbox", str(outbox_id))
        return 202, {"email": {"outbox_id": outbox_id, "status": "queued", "to": customer.email,
                               "subject": WELCOME_SUBJECT, "login_link": login, "courses": courses}}

    req = Request("customer.welcome_email", customer.id, customer.account, {}, idempotency_key, actor)
    return _perform(pool, stripe, req, apply)


def customer_links(pool, base_url: str, key: bytes, customer_id: str, now: int) -> Answer:
    """GET /customers/{id}/links: login, password reset (valid 24 hours), billing, cancel subscription."""
    customer = _customer(pool, customer_id)
    return 200, links.customer_links(base_url, key, customer.id, now)


# --- payments -----------------------------------------------------------------------------------

def refund_payment(pool, stripe: StripeApi, charge_id: str, body, *, idempotency_key: str,
                   actor: str) -> Answer:
    """Refund a charge in Stripe, whole or part; the refund is recorded pending at once (rule 1: access stays)."""
    fields = _fields(body, {"amount": _positive_int, "reason": _one_of(REFUND_REASONS)})
    if earlier := _answered_before(pool, "payment.refund", charge_id, fields, idempotency_key):
        return earlier
    with pool.connection() as conn:
        payment = _only(payments.find_by_charge(conn, charge_id), f"payment {charge_id}")
    if payment.charge_status != "succeeded":
        raise ActionError(f"payment {charge_id} is {payment.charge_status}: there is nothing to refund", 409)
    remaining = payment.amount - payment.amount_refunded
    if remaining <= 0:
        raise ActionError(f"payment {charge_id} is already fully refunded")
    amount = fields.get("amount", remaining)
    if amount > remaining:
        raise ActionError(f"amount must be at most {remaining} (the payment's {payment.amount} less "
                          f"{payment.amount_refunded} already refunded)")
    params = {"amount": amount, **({"reason": fields["reason"]} if "reason" in fields else {})}

    def call():
        return stripe.request("post", "/v1/refunds", account=to_api(payment.account),
                              idempotency_key=idempotency_key, charge=charge_id,
                              metadata={"teachery_origin": "teachery"}, **params)

    def apply(ctx, refund):
        refund_id = refund.get("id")
        if refund_status(refund) not in REFUND_STATUSES or not isinstance(refund_id, str):
            raise ValueError(f"Stripe answered the refund with something unexpected: {refund!r:.200}")
        # Stripe often answers a card refund `succeeded` at once; the contract keeps a refund we start
        # pending until Stripe's refund event confirms it. Stripe's answer is the refund's first state,
        # so it gets the lowest version: every event about the refund is newer.
        status = "pending" if refund_status(refund) == "succeeded" else None
        paid = snapshot_refund(ctx, refund, (0, FETCHED), status=status)
        row = payments.lock_refund(ctx.conn, ctx.account, refund_id)
        return 202, {
            "refund": {"stripe_refund_id": row.stripe_refund_id, "stripe_charge_id": charge_id, "amount": row.amount,
                       "currency": refund.get("currency"), "status": row.status, "reason": row.reason,
                       "origin": row.origin},
            "payment": {"stripe_charge_id": charge_id, "amount": paid.amount, "currency": paid.currency,
                        "amount_refunded": paid.amount_refunded, "status": paid.status},
        }

    req = Request("payment.refund", charge_id, payment.account, params, idempotency_key, actor)
    return _perform(pool, stripe, req, apply, call)


# --- subscriptions ------------------------------------------------------------------------------

def cancel_subscription(pool, stripe: StripeApi, sub_id: str, body, *, idempotency_key: str,
                        actor: str) -> Answer:
    """Cancel now (DELETE) or at period end; no refund, no revoke (rule 2)."""
    fields = _fields(body, {"at_period_end": _bool}, required=("at_period_end",))
    if fields["at_period_end"]:
        return _change_subscription(pool, stripe, sub_id, "subscription.cancel", fields, idempotency_key,
                                    "post", "", actor=actor, cancel_at_period_end=True)
    return _change_subscription(pool, stripe, sub_id, "subscription.cancel", fields, idempotency_key, "delete", "",
                                actor=actor)


def pause_subscription(pool, stripe: StripeApi, sub_id: str, body, *, idempotency_key: str,
                       actor: str) -> Answer:
    """Pause collection (rule 4: the subscription and the access stay)."""
    fields = _fields(body, {"behavior": _one_of(PAUSE_BEHAVIORS), "resumes_at": _future_time}, required=("behavior",))
    pause = {"behavior": fields["behavior"]}
    if "resumes_at" in fields:
        pause["resumes_at"] = _epoch(fields["resumes_at"])
    return _change_subscription(pool, stripe, sub_id, "subscription.pause", fields, idempotency_key, "post", "",
                                actor=actor, pause_collection=pause)


def resume_subscription(pool, stripe: StripeApi, sub_id: str, body, *, idempotency_key: str,
                        actor: str) -> Answer:
    """Resume: a subscription whose status is `paused` through Stripe's resume endpoint (keeping its
    billing cycle anchor); otherwise clear pause_collection."""
    _fields(body, {})
    if earlier := _answered_before(pool, "subscription.resume", sub_id, {}, idempotency_key):
        return earlier
    if _subscription(pool, sub_id).status == "paused":
        return _change_subscription(pool, stripe, sub_id, "subscription.resume", {}, idempotency_key, "post",
                                    "/resume", actor=actor, billing_cycle_anchor="unchanged")
    # Stripe quirk: collection is unpaused by sending pause_collection as an empty string, not null.
    return _change_subscription(pool, stripe, sub_id, "subscription.resume", {}, idempotency_key, "post", "",
                                actor=actor, pause_collection="")


def _subscription(pool, sub_id: str) -> subscriptions.Subscription:
    with pool.connection() as conn:
        return _only(subscriptions.find(conn, sub_id), f"subscription {sub_id}")


def _change_subscription(pool, stripe: StripeApi, sub_id: str, kind: str, params: dict, idempotency_key: str,
                         method: str, suffix: str, *, actor: str, **stripe_params) -> Answer:
    if earlier := _answered_before(pool, kind, sub_id, params, idempotency_key):
        return earlier
    sub = _subscription(pool, sub_id)
    if sub.status in ENDED:
        raise ActionError(f"subscription {sub_id} is {sub.status} and cannot be changed", 409)

    def call():
        return stripe.request(method, f"/v1/subscriptions/{sub_id}{suffix}", account=to_api(sub.account),
                              idempotency_key=idempotency_key, **stripe_params)

    def apply(ctx, answer):
        snapshot_subscription(ctx, answer, (sub.stripe_created, FETCHED))
        return 202, {"subscription": subscription_json(subscriptions.lock(ctx.conn, sub.account, sub_id))}

    req = Request(kind, sub_id, sub.account, params, idempotency_key, actor)
    return _perform(pool, stripe, req, apply, call, sub.stripe_created)


def subscription_json(row: subscriptions.Subscription) -> dict:
    """A subscription in the profile's shape."""
    return {"stripe_subscription_id": row.stripe_subscription_id, "course_id": row.course_id, "status": row.status,
            "pause_collection": row.pause_collection, "cancel_at_period_end": row.cancel_at_period_end,
            "cancel_at": _iso(row.cancel_at), "canceled_at": _iso(row.canceled_at), "ended_at": _iso(row.ended_at),
            "current_period_end": _iso(row.current_period_end)}
