"""The pages of Stripe objects a reconciliation run checks, in order, from where its cursor says it is.

Per account (in key order, the platform first): a listing run reads the phases customer (the listing,
or the one customer of a `customer` scope), unlisted (customers we hold as live that the listing did not
show: each is asked for, a deletion stub is checked; without `since` only), charge, refund (per charge
with `customer`), subscription and payment (the placeholders no listed charge was compared with); a
changed-since run reads the account's events since then and re-reads each object they name, once per run;
a run applying a dry run re-reads the dry run's drifted objects, kind by kind. A page carries `after`, the
cursor recorded once it is checked: its lane resumes after it.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from domain import reconciliation_drift as drift_rows
from domain import reconciliations
from domain.accounts import to_api, to_key
from domain.reconciliations import APPLIED, Run, lane_key
from workers.changed_objects import named
from workers.drift import KINDS, read_object
from workers.services import Services
from workers.stripe_api import NotFound
from workers.stripe_objects import integer
from workers.stripe_pages import PAGE_SIZE, pages

LISTS = {"customer": "/v1/customers", "charge": "/v1/charges", "refund": "/v1/refunds",
         "subscription": "/v1/subscriptions"}
PHASES = ("customer", "unlisted", "charge", "refund", "subscription", "payment")  # a listing run's, per account
PLACEHOLDER = "placeholder"  # the seen rows' kind of our payments (row ids) a listed charge was compared with


@dataclass
class Page:
    account: str  # the account's key ('' = the platform)
    kind: str  # of the objects: customer, charge, refund, subscription
    phase: str  # the cursor's `kind`: a PHASES one, "event" (changed-since runs) or the kind (applying runs)
    after: str  # the cursor's `after` once this page is checked
    objects: list[dict]  # Stripe's objects to compare
    seen: list[str] = field(default_factory=list)  # ids to remember as listed or read by the run
    gone: list[str] = field(default_factory=list)  # ids Stripe no longer has (a run applying a dry run)


def run_lanes(services: Services, run: Run, accounts: list[str], cursors: dict[str, dict]) -> dict[str, Iterator[Page]]:
    """The pages the run has left to check, by lane, from its lanes' cursors (domain.reconciliations.
    lane_cursors of its `accounts`): a listing or changed-since run has a lane per account (they do not
    share a row, so they are checked side by side), a run applying a dry run one lane. A finished lane is
    absent."""
    if run.applies:
        at = cursors.get(APPLIED, {})
        return {} if at.get("done") else {APPLIED: _applied(services, run, at)}
    lanes = {}
    for account in accounts:
        at = cursors.get(lane_key(account), {})
        if at.get("done"):
            continue
        lanes[lane_key(account)] = _changed(services, run, account, at.get("after")) if run.changed_since \
            else _listed(services, run, account, at)
    return lanes


# --- a listing run ---------------------------------------------------------------------------------

def _listed(services: Services, run: Run, account: str, resume: dict) -> Iterator[Page]:
    start = PHASES.index(resume["kind"]) if resume.get("kind") in PHASES else 0
    for phase in PHASES[start:]:
        after = resume.get("after") if resume.get("kind") == phase else None
        yield from PHASE_PAGES[phase](services, run, account, after)


def _filters(run: Run) -> dict:
    return {"created": {"gte": int(run.since.timestamp())}} if run.since else {}


def _customers(services: Services, run: Run, account: str, after: str | None) -> Iterator[Page]:
    api_account = to_api(account)
    if run.customer:
        if after is None:
            objects = _one_customer(services, api_account, run)
            yield Page(account, "customer", "customer", run.customer, objects, seen=[o["id"] for o in objects])
        return
    for objects, _ in pages(services.stripe, LISTS["customer"], account=api_account, after=after, **_filters(run)):
        if objects:
            yield Page(account, "customer", "customer", objects[-1]["id"], objects, seen=[o["id"] for o in objects])


def _one_customer(services: Services, api_account: str | None, run: Run) -> list[dict]:
    try:
        obj = services.stripe.retrieve("customer", run.customer, account=api_account)
    except NotFound:
        return []
    created_since = run.since is None or obj.get("deleted") is True or \
        integer(obj.get("created")) >= run.since.timestamp()
    return [obj] if created_since else []


def _unlisted(services: Services, run: Run, account: str, after: str | None) -> Iterator[Page]:
    """Customers we hold as live that the listing did not show, by keyset pages of our ids: each is asked
    for, and a deletion stub is checked (a `since` listing leaves older customers out on purpose)."""
    if run.since is not None:
        return
    after = after or ""
    while True:
        with services.pool.connection() as conn:
            ids = reconciliations.unlisted_customers(conn, run.id, account, run.customer, after, PAGE_SIZE)
        if not ids:
            return
        stubs = []
        for cus_id in ids:
            try:
                obj = services.stripe.retrieve("customer", cus_id, account=to_api(account))
            except NotFound:
                continue
            if obj.get("deleted") is True:
                stubs.append(obj)
        after = ids[-1]
        yield Page(account, "customer", "unlisted", after, stubs, seen=ids)
        if len(ids) < PAGE_SIZE:
            return


def _charges(services: Services, run: Run, account: str, after: str | None) -> Iterator[Page]:
    by_customer = {"customer": run.customer} if run.customer else {}
    for objects, _ in pages(services.stripe, LISTS["charge"], account=to_api(account), after=after,
                            **by_customer, **_filters(run)):
        if objects:
            yield Page(account, "charge", "charge", objects[-1]["id"], objects)


def _refunds(services: Services, run: Run, account: str, after: str | None) -> Iterator[Page]:
    api_account = to_api(account)
    if not run.customer:
        for objects, _ in pages(services.stripe, LISTS["refund"], account=api_account, after=after, **_filters(run)):
            if objects:
                yield Page(account, "refund", "refund", objects[-1]["id"], objects)
        return
    # Stripe lists refunds by charge, not by customer: the customer's charges again, then each one's
    # refunds; the cursor names the last charge whose refunds are all checked.
    done = after
    for charges, _ in pages(services.stripe, LISTS["charge"], account=api_account, after=after,
                            customer=run.customer, **_filters(run)):
        for charge in charges:
            for objects, more in pages(services.stripe, LISTS["refund"], account=api_account,
                                       charge=charge["id"], **_filters(run)):
                if not more:
                    done = charge["id"]
                if objects:
                    yield Page(account, "refund", "refund", done or "", objects)


def _subscriptions(services: Services, run: Run, account: str, after: str | None) -> Iterator[Page]:
    by_customer = {"customer": run.customer} if run.customer else {}
    for objects, _ in pages(services.stripe, LISTS["subscription"], account=to_api(account), after=after,
                            status="all", **by_customer, **_filters(run)):
        if objects:
            yield Page(account, "subscription", "subscription", objects[-1]["id"], objects)


def _placeholders(services: Services, run: Run, account: str, after: str | None) -> Iterator[Page]:
    """The payments we hold only under a payment intent or invoice id that no listed charge was compared
    with, by keyset pages of those ids: each intent or invoice as Stripe answers it now (kind `payment`)."""
    after = after or ""
    with services.pool.connection() as conn:
        matched = [int(i) for i in drift_rows.seen_all(conn, run.id, account, PLACEHOLDER)]
    while True:
        with services.pool.connection() as conn:
            ids = reconciliations.placeholders(conn, account, run.scope, matched, after, PAGE_SIZE)
        if not ids:
            return
        objects = [obj for obj in (_retrieve(services, "payment", i, to_api(account)) for i in ids) if obj]
        after = ids[-1]
        yield Page(account, "payment", "payment", after, objects)
        if len(ids) < PAGE_SIZE:
            return


PHASE_PAGES = {"customer": _customers, "unlisted": _unlisted, "charge": _charges, "refund": _refunds,
               "subscription": _subscriptions, "payment": _placeholders}


# --- a changed-since run ---------------------------------------------------------------------------

def _changed(services: Services, run: Run, account: str, after: str | None) -> Iterator[Page]:
    """The account's events since `changed_since`, a page at a time: the objects they name that the run
    has not read yet are re-read, by kind; the cursor moves to the page's last event with its last kind."""
    api_account = to_api(account)
    since = {"created": {"gte": int(run.changed_since.timestamp())}}
    done = after or ""
    for events, _ in pages(services.stripe, "/v1/events", account=api_account, after=after, **since):
        if not events:
            continue
        wanted: dict[str, list[str]] = {kind: [] for kind in KINDS}
        for event in events:
            for kind, object_id in named(event):
                if object_id not in wanted[kind]:
                    wanted[kind].append(object_id)
        with services.pool.connection() as conn:
            read = {kind: drift_rows.seen(conn, run.id, account, kind, ids) for kind, ids in wanted.items()}
        todo = [(kind, [i for i in ids if i not in read[kind]]) for kind, ids in wanted.items()]
        todo = [(kind, ids) for kind, ids in todo if ids]
        for n, (kind, ids) in enumerate(todo, 1):
            objects = [obj for obj in (_retrieve(services, kind, i, api_account) for i in ids) if obj is not None]
            yield Page(account, kind, "event", events[-1]["id"] if n == len(todo) else done, objects, seen=ids)
        done = events[-1]["id"]


def _retrieve(services: Services, kind: str, object_id: str, api_account: str | None) -> dict | None:
    """Stripe's object now (a `payment`: its payment intent or invoice), None when Stripe has none."""
    try:
        return read_object(services, to_key(api_account), kind, object_id)
    except NotFound:
        return None


# --- a run applying a dry run ----------------------------------------------------------------------

def _applied(services: Services, run: Run, cursor: dict) -> Iterator[Page]:
    """The dry run's drifted objects, kind by kind (owners first), a page at a time, each re-read from
    Stripe now; one Stripe no longer has is `gone`."""
    start = KINDS.index(cursor["kind"]) if cursor.get("kind") in KINDS else 0
    for kind in KINDS[start:]:
        after = (to_key(cursor.get("account")), cursor.get("after") or "") if cursor.get("kind") == kind else ("", "")
        while True:
            with services.pool.connection() as conn:
                found = drift_rows.objects(conn, run.applies, kind, after, PAGE_SIZE)
            for account in dict.fromkeys(account for account, _ in found):
                ids = [object_id for acc, object_id in found if acc == account]
                objects, gone = [], []
                for object_id in ids:
                    obj = _retrieve(services, kind, object_id, to_api(account))
                    (objects.append(obj) if obj is not None else gone.append(object_id))
                yield Page(account, kind, kind, ids[-1], objects, gone=gone)
            if len(found) < PAGE_SIZE:
                break
            after = found[-1]
