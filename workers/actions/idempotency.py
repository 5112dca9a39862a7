"""How an admin command runs: once per idempotency key, its Stripe call outside any transaction, and
Stripe's answer applied at once, atomically, through the functions the event handlers use.

An action is recorded in `admin_actions` under its idempotency key (`teachery-…`) before anything
happens; nothing changes locally when the Stripe call fails. The answer is applied in a Change of
origin "teachery" that names the action and its actor on every activity entry. The event Stripe sends
afterwards carries the same idempotency key, so it is logged as ours too, and being newer it still wins
over the answer applied here (docs/rules.md, rules 9 and 12). One rule says whether a key was used
for this request: same kind, same record, same fields asked (`same_request`).
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from domain import admin_actions
from domain.accounts import to_api
from workers import telemetry
from workers.commands import AdminCommand, CommandRefused
from workers.context import Change
from workers.stripe_api import NotFound, StripeRejected, StripeUnavailable

Answer = tuple[int, dict]


@dataclass(frozen=True)
class StripeCall:
    """The request an action makes to Stripe (with the record's account and the command's idempotency key)."""
    method: str
    path: str
    params: dict = field(default_factory=dict)


def same_request(earlier: admin_actions.AdminAction, cmd: AdminCommand) -> None:
    """409 unless the action recorded under this key is this very request, on a record the asking token
    may act on (another account's answer is never handed out, even for its key)."""
    other_account = cmd.scope is not None and earlier.account != cmd.scope
    if other_account or (earlier.kind, earlier.target, earlier.params) != (cmd.kind, cmd.target, cmd.params):
        raise CommandRefused("this Idempotency-Key was already used for a different admin request", 409)


def once(handler: Callable[..., Answer]) -> Callable[..., Answer]:
    """Run an admin command's handler unless its key already answered this request: a client's retry
    gets the first answer. Looked up before the handler checks the request against the records: the
    first request changed them (a refund made, a subscription canceled), so checking the retry against
    them would refuse it. Each request is counted by kind and outcome (teachery_admin_actions)."""
    @functools.wraps(handler)
    def run(services, cmd: AdminCommand) -> Answer:
        try:
            answer, outcome = _run_once(handler, services, cmd)
        except CommandRefused as exc:
            telemetry.admin_action(cmd.kind, "unavailable" if exc.status == 503 else "rejected")
            raise
        except Exception:
            telemetry.admin_action(cmd.kind, "failed")
            raise
        telemetry.admin_action(cmd.kind, outcome)
        return answer
    return run


def _run_once(handler: Callable[..., Answer], services, cmd: AdminCommand) -> tuple[Answer, str]:
    with services.pool.connection() as conn:
        earlier = admin_actions.lock_by_key(conn, cmd.idempotency_key)
    if earlier is not None:
        same_request(earlier, cmd)
        if earlier.outcome == "succeeded":
            return (earlier.status_code, earlier.response), "replayed"
    return handler(services, cmd), "succeeded"


def perform(services, cmd: AdminCommand, account: str, apply: Callable[[Change, dict | None], Answer],
            call: StripeCall | None = None, *, stamp: int = 0) -> Answer:
    """Record the action, make its Stripe call (if any) outside a transaction, apply the result atomically
    at version second `stamp`."""
    action, replayed = _start(services.pool, cmd, account)
    if replayed is not None:
        return replayed
    answer = _call_stripe(services, action.id, cmd, account, call) if call else None
    try:
        with services.pool.connection() as conn:
            change = Change(conn, account, services.stripe, origin="teachery", stamp=stamp, actor=cmd.actor,
                            action_id=action.id)
            status, body = apply(change, answer)
            change.flush()
            admin_actions.finish(conn, action.id, "succeeded", status_code=status, response=body)
    except CommandRefused as exc:
        _give_up(services.pool, action.id, "rejected", exc.status, exc.message)
    except Exception as exc:
        _record(services.pool, action.id, "failed", 500, f"{type(exc).__name__}: {exc}")
        raise
    return status, body


def _start(pool, cmd: AdminCommand, account: str) -> tuple[admin_actions.AdminAction, Answer | None]:
    """The action's row, new or (same idempotency key, taken meanwhile) the earlier one; with its answer
    when already done."""
    with pool.connection() as conn:
        action = admin_actions.start(conn, kind=cmd.kind, target=cmd.target, account=account, params=cmd.params,
                                     idempotency_key=cmd.idempotency_key, actor=cmd.actor)
        if action is not None:
            return action, None
        earlier = admin_actions.lock_by_key(conn, cmd.idempotency_key)
        same_request(earlier, cmd)
        if earlier.outcome == "succeeded":
            return earlier, (earlier.status_code, earlier.response)
        if earlier.outcome == "rejected":
            raise CommandRefused(earlier.error or "rejected", earlier.status_code or 400)
        if earlier.outcome == "started":
            raise CommandRefused("an admin request with this Idempotency-Key is still in progress", 409)
        admin_actions.restart(conn, earlier.id)  # unavailable or failed before: try again
        return earlier, None


def _call_stripe(services, action_id: str, cmd: AdminCommand, account: str, call: StripeCall) -> dict:
    try:
        return services.stripe.request(call.method, call.path, account=to_api(account),
                                       idempotency_key=cmd.idempotency_key, **call.params)
    except StripeUnavailable as exc:
        _give_up(services.pool, action_id, "unavailable", 503, str(exc))
    except NotFound as exc:
        _give_up(services.pool, action_id, "rejected", 409, f"Stripe has no such object: {exc}")
    except StripeRejected as exc:
        _give_up(services.pool, action_id, "rejected", exc.status if exc.status and 400 <= exc.status < 500 else 400,
                 str(exc))


def _record(pool, action_id: str, outcome: str, status: int, message: str) -> None:
    with pool.connection() as conn:
        admin_actions.finish(conn, action_id, outcome, status_code=status, error=message)


def _give_up(pool, action_id: str, outcome: str, status: int, message: str):
    _record(pool, action_id, outcome, status, message)
    raise CommandRefused(message, status)
