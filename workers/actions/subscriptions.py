"""Admin actions on a subscription, made in Stripe: cancel, pause, resume. None refunds or revokes
(docs/rules.md, rules 2 and 4)."""
from __future__ import annotations

from domain import subscriptions
from domain.times import parse_iso
from domain.versions import FETCHED
from workers.actions.answers import subscription_json
from workers.actions.idempotency import Answer, StripeCall, once, perform
from workers.actions.lookups import subscription_of
from workers.commands import AdminCommand, CancelSubscription, CommandRefused, PauseSubscription, ResumeSubscription
from workers.handlers.subscriptions import ENDED, snapshot_subscription


@once
def cancel_subscription(services, cmd: CancelSubscription) -> Answer:
    """Cancel now (DELETE) or at period end."""
    sub = subscription_of(services.pool, cmd.target, cmd.scope)
    if cmd.asked.at_period_end:
        return _change(services, cmd, sub, "post", cancel_at_period_end=True)
    return _change(services, cmd, sub, "delete")


@once
def pause_subscription(services, cmd: PauseSubscription) -> Answer:
    """Pause collection: the subscription and the access stay."""
    pause = {"behavior": cmd.asked.behavior}
    if cmd.asked.resumes_at:
        pause["resumes_at"] = int(parse_iso(cmd.asked.resumes_at).timestamp())
    sub = subscription_of(services.pool, cmd.target, cmd.scope)
    return _change(services, cmd, sub, "post", pause_collection=pause)


@once
def resume_subscription(services, cmd: ResumeSubscription) -> Answer:
    """Resume: a subscription whose status is `paused` through Stripe's resume endpoint (keeping its
    billing cycle anchor); otherwise clear pause_collection."""
    sub = subscription_of(services.pool, cmd.target, cmd.scope)
    if sub.status == "paused":
        return _change(services, cmd, sub, "post", "/resume", billing_cycle_anchor="unchanged")
    # Stripe quirk: collection is unpaused by sending pause_collection as an empty string, not null.
    return _change(services, cmd, sub, "post", pause_collection="")


def _change(services, cmd: AdminCommand, sub: subscriptions.Subscription, method: str, suffix: str = "",
            **params) -> Answer:
    """Ask Stripe for the change (`method` /v1/subscriptions/{id}{suffix}) unless the subscription has ended;
    apply its answer."""
    if sub.status in ENDED:
        raise CommandRefused(f"subscription {sub.stripe_subscription_id} is {sub.status} and cannot be changed", 409)

    def apply(change, answer):
        snapshot_subscription(change, answer, (sub.stripe_created, FETCHED))
        return 202, subscription_json(subscriptions.lock(change.conn, sub.account, sub.stripe_subscription_id))

    call = StripeCall(method, f"/v1/subscriptions/{sub.stripe_subscription_id}{suffix}", params)
    return perform(services, cmd, sub.account, apply, call, stamp=sub.stripe_created)
