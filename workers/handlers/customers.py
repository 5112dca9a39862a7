"""customer.* events, and finding (or fetching) the customer any event names."""
from __future__ import annotations

from domain import customers, payments
from domain.versions import CUSTOMER_RANK, FETCHED, Order, compare
from workers.context import Change, EventContext
from workers.stripe_objects import ref


def apply_customer_change(ctx: EventContext) -> None:
    """customer.created / customer.updated: take the newer name and email."""
    snapshot_customer(ctx, ctx.obj, ctx.version(CUSTOMER_RANK["live"]))


def mark_customer_deleted(ctx: EventContext) -> None:
    """customer.deleted: the customer stays, marked deleted_in_stripe, with its last known details
    (docs/rules.md, rule 5)."""
    snapshot_customer(ctx, {**ctx.obj, "deleted": True}, ctx.version(CUSTOMER_RANK["deleted"]))


def snapshot_customer(ctx: Change, obj: dict, version: tuple[int, int]) -> customers.Customer:
    """Apply a Stripe customer object at this version; returns the row."""
    cus_id = ref(obj.get("id"))
    if not cus_id:
        raise ValueError("the customer object has no id")
    deleted = obj.get("deleted") is True
    name, email = obj.get("name"), obj.get("email")
    # A deletion stub ({"id", "deleted": true}) says nothing of name or email: it sets the flag
    # (which never goes back) and leaves the details to whichever snapshot carries them.
    if "name" not in obj and "email" not in obj:
        version = (0, 0)
    row = customers.lock(ctx.conn, ctx.account, cus_id)
    if row is None:
        row = customers.insert(ctx.conn, ctx.account, cus_id, name=name, email=email, deleted=deleted, version=version)
        if row is not None:
            ctx.log(row.id, "customer.created", f"Customer {cus_id} created ({_who(name, email)})", "customer", cus_id)
            if deleted:
                ctx.log(row.id, "customer.deleted_in_stripe", f"Customer {cus_id} was deleted in Stripe", "customer",
                        cus_id)
            _adopt_records(ctx, row)
            return row
        row = customers.lock(ctx.conn, ctx.account, cus_id)  # created meanwhile by another worker
    order = compare(version, row.version)
    if order is Order.SAME_TIME and version[1] != FETCHED and (name, email) != (row.name, row.email):
        current = ctx.settle_tie("customer", cus_id)
        if current is not None:
            name, email, version = current.get("name"), current.get("email"), (version[0], FETCHED)
            deleted = deleted or current.get("deleted") is True
    if order is Order.OLDER or version == (0, 0):
        name, email, version = row.name, row.email, None  # keep the details; the flag may still change
    new = {"name": name, "email": email, "deleted": row.deleted_in_stripe or deleted}
    changed = [k for k, old in (("name", row.name), ("email", row.email), ("deleted", row.deleted_in_stripe))
               if new[k] != old]
    if not changed and version in (None, row.version):
        return row
    customers.update(ctx.conn, row.id, name=new["name"], email=new["email"], deleted=new["deleted"], version=version)
    if "deleted" in changed:
        ctx.log(row.id, "customer.deleted_in_stripe",
                f"Customer {cus_id} was deleted in Stripe; the record and its access are kept", "customer", cus_id)
    details = [f"{k} {getattr(row, k)!r} → {new[k]!r}" for k in ("name", "email") if k in changed]
    if details:
        ctx.log(row.id, "customer.updated", f"Customer {cus_id}: " + ", ".join(details), "customer", cus_id)
    row.name, row.email, row.deleted_in_stripe = new["name"], new["email"], new["deleted"]
    return row


def ensure_customer(ctx: Change, cus_id: str, *, name: str | None = None,
                    email: str | None = None) -> customers.Customer:
    """The customer an event names. Unknown ones are created from the details the payload states,
    or else fetched from Stripe (the event waits until that succeeds)."""
    row = customers.lock(ctx.conn, ctx.account, cus_id)
    if row is not None:
        if (name and not row.name) or (email and not row.email):
            customers.update(ctx.conn, row.id, name=row.name or name, email=row.email or email,
                             deleted=row.deleted_in_stripe, version=None)
            row.name, row.email = row.name or name, row.email or email
        return row
    if email or name:
        # Details from a purchase rank below any customer snapshot: customer.* events override them.
        row = customers.insert(ctx.conn, ctx.account, cus_id, name=name, email=email, deleted=False, version=(0, 0))
        if row is not None:
            ctx.log(row.id, "customer.created", f"Customer {cus_id} created ({_who(name, email)})", "customer", cus_id)
            _adopt_records(ctx, row)
            return row
        return customers.lock(ctx.conn, ctx.account, cus_id)
    fetched = ctx.fetch("customer", cus_id)
    return snapshot_customer(ctx, fetched, (ctx.stamp, FETCHED))


def _adopt_records(ctx: Change, row: customers.Customer) -> None:
    ctx.touched.add(row.stripe_customer_id)
    payments.link_customer(ctx.conn, ctx.account, row.stripe_customer_id, row.id)


def _who(name, email) -> str:
    return ", ".join(x for x in (name, email) if x) or "no name or email yet"
