"""The customer profile's buttons: POST forms (CSRF, webhooks/console/session.py) that run the admin API's
commands (workers/command_table.py), then send the browser back to the profile (post/redirect/get) with
what was done, or why not (Stripe's refusal, our validation message).

Every rendered form carries a fresh idempotency key (a uuid, customers.py `new_key`): submitting the same
form twice, or a browser retrying it, applies the action once, here and in Stripe (the key becomes Stripe's
Idempotency-Key, as the API's Idempotency-Key header does).
"""
from __future__ import annotations

from datetime import UTC, date, datetime

from flask import Blueprint, flash, g, redirect, request, url_for

from domain import admin_actions, profiles
from domain.accounts import to_key
from webhooks import current
from webhooks.auth import scope, sees
from webhooks.console.amounts import BadAmount, as_written, to_minor
from webhooks.console.chrome import money, when
from webhooks.errors import ApiError
from workers import commands
from workers.command_table import handle
from workers.context import TEACHERY_KEY_PREFIX

bp = Blueprint("actions", __name__)
KEY_FIELD = "idempotency_key"


class FormError(Exception):
    """The form's input cannot make a command; the message says what to fix."""


def load_profile(customer_id: str) -> dict:
    """The customer's profile (the API's), or a 404: also for another account's customer when the token
    is scoped to one account (as if the customer did not exist)."""
    with current.services().pool.connection() as conn:
        found = profiles.profile_by_id(conn, customer_id)
    if found is None or not sees(to_key(found["account"])):
        raise ApiError(f"customer {customer_id} not found", 404)
    return found


def remaining(payment: dict) -> int:
    """What is left to refund of a payment (refunds pending or succeeded count as refunded)."""
    return payment["amount"] - (payment["amount_refunded"] or 0)


def _one(items: list[dict], key: str, value: str, what: str) -> dict:
    """The customer's record with this id; a 404 when the customer has none (a form not of this profile)."""
    for item in items:
        if item[key] == value:
            return item
    raise ApiError(f"{what} {value} is not this customer's", 404)


def _key() -> str:
    given = request.form.get(KEY_FIELD, "").strip()
    if not given or len(given) > 200 or not given.isprintable():
        raise FormError("this form has no valid idempotency key: reload the page and try again")
    return f"{TEACHERY_KEY_PREFIX}{given}"


def _used(key: str) -> bool:
    """An action was recorded under this key (the form was submitted before): its command answers again."""
    with current.services().pool.connection() as conn:
        return admin_actions.lock_by_key(conn, key) is not None


def _act(customer_id: str, build, done):
    """Build the command from the form, run it, flash what happened, and go back to the profile (to its
    top, where the outcome is shown)."""
    try:
        command = build(_key())
        status, body = handle(current.services(), command)
    except FormError as exc:
        flash(f"Nothing was done: {exc}.", "error")
    except commands.CommandRefused as exc:
        flash(f"Nothing was done: {exc.message}", "error")
    else:
        flash(done(body), "success")
    return redirect(url_for("console_customers.profile", customer_id=customer_id), 303)


def _command(command_type, key: str, **fields):
    """The command with the token's name (the actor) and the one account it may act on (its scope)."""
    return command_type(idempotency_key=key, actor=g.actor, scope=scope(), **fields)


@bp.post("/customers/<id:customer_id>/edit")
def edit(customer_id: str):
    """Send the changed name and/or email to Stripe (the fields the form showed, compared with what it sent,
    so that a second submit of the same form asks the very same change)."""
    load_profile(customer_id)
    changes = {}
    for field in ("name", "email"):
        new, was = request.form.get(field, "").strip(), request.form.get(f"was_{field}", "").strip()
        if new != was:
            changes[field] = new

    def build(key):
        if not changes:
            raise FormError("the name and email are as they were")
        return _command(commands.EditCustomer, key, target=customer_id, asked=commands.CustomerChanges.parse(changes))

    def done(body):
        return (f"Saved in Stripe: {body.get('name') or '—'}, {body.get('email') or '—'}. "
                "Nothing else changed (payments, subscriptions and access are as they were).")

    return _act(customer_id, build, done)


@bp.post("/customers/<id:customer_id>/welcome-email")
def welcome_email(customer_id: str):
    load_profile(customer_id)

    def done(body):
        email = body["email"]
        return f"Welcome email with the login link queued for {email['to']} (outbox {email['outbox_id']})."

    return _act(customer_id, lambda key: _command(commands.SendWelcomeEmail, key, target=customer_id),
                done)


COURSE_ACCESS = {
    "grant": (commands.GrantCourse, "Access to course {course} granted. Nothing was charged."),
    "revoke": (commands.RevokeCourse, "Access to course {course} revoked. Nothing was refunded and no "
                                      "subscription was canceled."),
}


@bp.post("/customers/<id:customer_id>/courses/<course:course_id>/<verb>")
def course_access(customer_id: str, course_id: str, verb: str):
    if verb not in COURSE_ACCESS:
        raise ApiError(f"no such course action {verb!r}: revoke or grant", 404)
    _one(load_profile(customer_id)["enrollments"], "course_id", course_id, "course")
    command_type, message = COURSE_ACCESS[verb]
    return _act(customer_id, lambda key: _command(command_type, key, target=customer_id, course_id=course_id),
                lambda body: message.format(course=course_id))


@bp.post("/customers/<id:customer_id>/payments/<id:charge_id>/refund")
def refund(customer_id: str, charge_id: str):
    payment = _one(load_profile(customer_id)["payments"], "stripe_charge_id", charge_id, "payment")
    currency = payment["currency"]

    def build(key):
        try:
            amount = to_minor(request.form.get("amount", ""), currency)
        except BadAmount as exc:
            raise FormError(f"refund amount: {exc}") from None
        left = remaining(payment)
        if amount > left and not _used(key):  # a second submit of a refund made: the first answer, below
            raise FormError(f"refund amount: at most {as_written(left, currency)} {(currency or '').upper()} is "
                            f"left to refund of this payment")
        asked = {"amount": amount}
        if request.form.get("reason"):
            asked["reason"] = request.form["reason"]
        return _command(commands.RefundPayment, key, target=charge_id, asked=commands.RefundAsked.parse(asked))

    def done(body):
        made = body["refund"]
        return (f"Refund of {money(made['amount'], made['currency'])} asked of Stripe ({made['stripe_refund_id']}): "
                f"{made['status']} until Stripe confirms it. Course access is unchanged.")

    return _act(customer_id, build, done)


def _cancel(sub_id: str, key: str):
    at_end = request.form.get("when")
    if at_end not in ("now", "period_end"):
        raise FormError("choose to cancel now or at the end of the period")
    return _command(commands.CancelSubscription, key, target=sub_id,
                    asked=commands.CancelAsked.parse({"at_period_end": at_end == "period_end"}))


def _pause(sub_id: str, key: str):
    asked = {"behavior": request.form.get("behavior", "")}
    resumes_on = request.form.get("resumes_on", "").strip()
    if resumes_on:
        try:
            day = date.fromisoformat(resumes_on)
        except ValueError:
            raise FormError("the resume date must be a date, e.g. 2027-01-31") from None
        if day <= datetime.now(UTC).date():
            raise FormError("the resume date must be after today")
        asked["resumes_at"] = f"{day.isoformat()}T00:00:00Z"
    return _command(commands.PauseSubscription, key, target=sub_id, asked=commands.PauseAsked.parse(asked))


def _resume(sub_id: str, key: str):
    return _command(commands.ResumeSubscription, key, target=sub_id)


def _subscription_done(body: dict) -> str:
    sub = body["subscription"]
    name = sub["stripe_subscription_id"]
    if sub["status"] == "canceled":
        return f"Subscription {name} canceled now. Nothing was refunded; course access is unchanged."
    if sub["cancel_at_period_end"]:
        end = when(sub["cancel_at"] or sub["current_period_end"])
        return (f"Subscription {name} will cancel at the end of its period ({end}); access stays until then. "
                "Nothing was refunded.")
    pause = sub["pause_collection"]
    if pause:
        until = f" until {when(pause['resumes_at'])}" if pause.get("resumes_at") else " until it is resumed"
        return (f"Collection of subscription {name} paused ({pause['behavior']}){until}. The subscription and "
                "course access stay.")
    return f"Subscription {name} resumed: Stripe collects its payments again."


SUBSCRIPTION_ACTIONS = {"cancel": _cancel, "pause": _pause, "resume": _resume}


@bp.post("/customers/<id:customer_id>/subscriptions/<id:sub_id>/<verb>")
def subscription(customer_id: str, sub_id: str, verb: str):
    if verb not in SUBSCRIPTION_ACTIONS:
        raise ApiError(f"no such subscription action {verb!r}: cancel, pause or resume", 404)
    _one(load_profile(customer_id)["subscriptions"], "stripe_subscription_id", sub_id, "subscription")
    return _act(customer_id, lambda key: SUBSCRIPTION_ACTIONS[verb](sub_id, key),
                _subscription_done)
