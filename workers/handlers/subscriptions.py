"""customer.subscription.created / .updated / .deleted / .paused / .resumed.

Cancelling (now or at period end) and pausing change the subscription only: no refund, no revoke
(docs/rules.md, rules 2 and 4).
"""
from __future__ import annotations

from domain import courses, subscriptions
from domain.times import iso
from domain.versions import FETCHED, SUBSCRIPTION_RANK, Order, compare
from workers.context import Change, EventContext
from workers.handlers.customers import ensure_customer
from workers.handlers.payments import learn_course
from workers.stripe_objects import pause_collection, ref, subscription_course, subscription_period_end, when


def apply_subscription_change(ctx: EventContext) -> None:
    sub = ctx.obj
    if ctx.type == "customer.subscription.deleted" and sub.get("status") not in ENDED:
        # Stripe sends .deleted only for an ended subscription; a payload that still says otherwise
        # (dj-stripe's fixture is a copy of .created) is settled from the API, or else taken as ended.
        current = ctx.settle_tie("subscription", ref(sub.get("id")) or "")
        if current is not None and current.get("status") in ENDED:
            snapshot_subscription(ctx, current, (ctx.stamp, FETCHED))
            return
        ended = ctx.stamp or None
        sub = {**sub, "status": "canceled", "canceled_at": sub.get("canceled_at") or ended,
               "ended_at": sub.get("ended_at") or ended}
    snapshot_subscription(ctx, sub, ctx.version(SUBSCRIPTION_RANK.get(sub.get("status"), 1)))


ENDED = ("canceled", "incomplete_expired")


def snapshot_subscription(ctx: Change, sub: dict, version: tuple[int, int]) -> None:
    """Apply a Stripe subscription object at this version (its customer first)."""
    sub_id = ref(sub.get("id"))
    if not sub_id:
        raise ValueError("the subscription has no id")
    cus_id = ref(sub.get("customer"))
    customer = ensure_customer(ctx, cus_id) if cus_id else None
    stated = subscription_course(sub)
    course = stated or courses.recall(ctx.conn, ctx.account, [sub_id])
    state = state_of(sub)
    ctx.touched.add(sub_id)
    row = subscriptions.lock(ctx.conn, ctx.account, sub_id)
    if row is None:
        row = subscriptions.insert(ctx.conn, ctx.account, {
            **state, "stripe_subscription_id": sub_id, "stripe_customer_id": cus_id,
            "customer_id": customer.id if customer else None, "course_id": course,
        }, version)
        if row is not None:
            ctx.log(row.customer_id, "subscription.created",
                    f"Subscription {sub_id} recorded: {state['status']}" + _flags(state), "subscription", sub_id)
            if course:
                learn_course(ctx, [sub_id], course)
            return
        row = subscriptions.lock(ctx.conn, ctx.account, sub_id)
    order = compare(version, row.version)
    if order is Order.OLDER:
        subscriptions.fill(ctx.conn, row.id, customer_id=customer.id if customer else None, course_id=course)
        return
    before = {f: getattr(row, f) for f in subscriptions.STATE_FIELDS}
    if order is Order.SAME_TIME and version[1] != FETCHED and state != before:
        current = ctx.settle_tie("subscription", sub_id)
        if current is not None:
            state, version = state_of(current), (version[0], FETCHED)
            stated = subscription_course(current) or stated
    subscriptions.update_state(ctx.conn, row.id, {**state, "customer_id": customer.id if customer else None,
                                                  "course_id": course, "stated_course": stated}, version)
    for message, kind in describe_change(sub_id, before, state):
        ctx.log(row.customer_id or (customer.id if customer else None), kind, message, "subscription", sub_id)
    if stated and row.course_id and stated != row.course_id:  # moved to another price and course
        courses.replace(ctx.conn, ctx.account, sub_id, stated)
        ctx.log(row.customer_id or (customer.id if customer else None), "subscription.updated",
                f"Subscription {sub_id}: course {row.course_id} → {stated}", "subscription", sub_id)


def state_of(sub: dict) -> dict:
    status = sub.get("status") if isinstance(sub.get("status"), str) else "active"
    return {
        "status": status,
        "pause_collection": pause_collection(sub),
        "cancel_at_period_end": sub.get("cancel_at_period_end") is True,
        "cancel_at": when(sub.get("cancel_at")),
        "canceled_at": when(sub.get("canceled_at")),
        "ended_at": when(sub.get("ended_at")),
        "current_period_end": subscription_period_end(sub),
    }


def describe_change(sub_id: str, before: dict, after: dict) -> list[tuple[str, str]]:
    """Readable activity lines for what changed between two states."""
    out = []
    if before["status"] != after["status"]:
        kind = "subscription.canceled" if after["status"] == "canceled" else "subscription.status"
        out.append((f"Subscription {sub_id}: {before['status']} → {after['status']}", kind))
    if before["pause_collection"] != after["pause_collection"]:
        if after["pause_collection"]:
            resumes = after["pause_collection"].get("resumes_at")
            out.append((f"Subscription {sub_id}: collection paused ({after['pause_collection']['behavior']}"
                        + (f", resumes {resumes}" if resumes else "") + ")", "subscription.paused"))
        else:
            out.append((f"Subscription {sub_id}: collection resumed", "subscription.resumed"))
    if before["cancel_at_period_end"] != after["cancel_at_period_end"] or before["cancel_at"] != after["cancel_at"]:
        if after["cancel_at_period_end"] or after["cancel_at"]:
            at = after["cancel_at"] or after["current_period_end"]
            out.append((f"Subscription {sub_id}: set to cancel" + (f" at {iso(at)}" if at else "")
                        + (" (period end)" if after["cancel_at_period_end"] else ""), "subscription.cancel_scheduled"))
        else:
            out.append((f"Subscription {sub_id}: scheduled cancellation removed", "subscription.cancel_unscheduled"))
    other = [f for f in ("canceled_at", "ended_at", "current_period_end") if before[f] != after[f]]
    if other and not out:
        out.append((f"Subscription {sub_id}: " + ", ".join(other) + " updated", "subscription.updated"))
    return out


def _flags(state: dict) -> str:
    flags = []
    if state["pause_collection"]:
        flags.append(f"collection paused ({state['pause_collection']['behavior']})")
    if state["cancel_at_period_end"]:
        flags.append("cancels at period end")
    return f", {', '.join(flags)}" if flags else ""
