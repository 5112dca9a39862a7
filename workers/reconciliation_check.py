"""Checking one page of Stripe objects in a run: compare with our rows, record the drift, fix it (unless a
dry run), compare again and mark what is fixed, and move the run's cursor and progress.

A page's drift rows are inserted before its fixes (so that a fix the run made is never lost from its
report); the cursor, `checked`, `progress` and the `fixed` marks are written in one transaction after
them. A page with nothing to fix (or a dry run's) records its drift rows and cursor in one transaction.
A run checks its pages on a connection of its own (run_connection), held for the run, whose commits do
not wait for the WAL flush (synchronous_commit off): PostgreSQL writes WAL in order, so a crash of the
server loses at most the last fraction of a second of the run's commits, always a suffix (never a fix
without its drift rows), and the run resumes from the cursor that survived, as after a worker's death.
A worker that dies between a page's fixes and its cursor leaves the cursor before the page: the next one reads it
again, finds the drift rows there (kept once), fixes only what still differs, and marks the items of the
page's objects that no longer differ as fixed.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import psycopg

from domain import reconciliation_drift as drift_rows
from domain import reconciliations
from domain.accounts import to_api
from domain.reconciliations import Run, lane_key
from workers import telemetry
from workers.commands import FixObject
from workers.drift import differences, fix_object, local_rows
from workers.reconciliation_pages import PLACEHOLDER, Page
from workers.services import Services


class Tally:
    """What the run has checked so far (as recorded with its lanes' cursors), shared by its lanes."""

    def __init__(self, checked: int, progress: dict):
        self.checked = checked
        self.progress = progress  # {"platform" or acct_…: {kind: objects checked}}
        self._lock = threading.Lock()

    def add(self, page: Page) -> tuple[int, dict]:
        """Count the page in; returns its objects and its account's counts by kind (a copy)."""
        label = lane_key(page.account)
        checked = len(page.objects) + len(page.gone)
        with self._lock:
            counts = self.progress.setdefault(label, {})
            counts[page.kind] = counts.get(page.kind, 0) + checked
            self.checked += checked
            return checked, {label: dict(counts)}


def check_page(services: Services, run: Run, tally: Tally, page: Page, conn=None, *, lane: str) -> list[dict]:
    """Check one page of the lane `lane`; returns its drift items found now (before fixing). `conn`: the
    lane's own connection (run_connection), else one of the pool's for the page."""
    if conn is None:
        with services.pool.connection() as pooled:
            pooled.autocommit = True
            try:
                return _check(services, run, tally, page, pooled, lane)
            finally:
                pooled.autocommit = False
    return _check(services, run, tally, page, conn, lane)


@contextmanager
def run_connection(services: Services) -> Iterator[psycopg.Connection]:
    """The run's own connection for its pages: autocommit (writes grouped in transactions), commits
    without waiting for the WAL flush (see above)."""
    with psycopg.connect(services.settings.database_url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        yield conn


def _check(services: Services, run: Run, tally: Tally, page: Page, conn, lane: str) -> list[dict]:
    """On an autocommit connection: reads are single statements, writes grouped in `conn.transaction()`s."""
    api_account = to_api(page.account)
    objects = {obj["id"]: obj for obj in page.objects}
    local = local_rows(conn, page.kind, page.account, page.objects)
    local.update(reconciliations.local_rows(conn, page.kind, page.account, page.gone))
    # the placeholders this page's charges are compared with: the placeholder phase leaves them out
    matched = [str(row["row_id"]) for row in local.values() if page.kind == "charge"
               and row["stripe_charge_id"] is None]
    found = {oid: items for oid, obj in objects.items() if (items := differences(page.kind, obj, local.get(oid)))}
    gone = [{"object": object_id, "field": "exists", "local": object_id in local, "stripe": False}
            for object_id in page.gone]  # recorded, never fixed: nothing of Stripe's to apply
    items = [item for its in found.values() for item in its] + gone
    if run.dry_run or not found:  # nothing to fix: the drift rows and the cursor in one commit
        # items to mark exist only where a worker died between a page's fixes and its cursor
        marking = bool(run.resumed) and not run.dry_run
        # a page with nothing to record but its cursor is one UPDATE: no BEGIN and COMMIT around it
        with conn.transaction() if items or page.seen or matched or marking else nullcontext():
            new = drift_rows.record(conn, run.id, api_account, page.kind, items)
            fixed = _mark_fixed(conn, run, page, objects) if marking else 0
            _advance(conn, run, tally, page, lane, fixed=fixed, matched=matched)
        telemetry.drift(page.kind, found=new, fixed=fixed)  # committed; a page read again counts only news
        return items
    with conn.transaction():  # before the fixes: a fix the run made is never missing from its report
        new = drift_rows.record(conn, run.id, api_account, page.kind, items)
    telemetry.drift(page.kind, found=new)
    for object_id in found:
        # our row as just read, but a charge's: the fix of another charge of the page may take over the
        # placeholder it was compared with
        known = {"local": local.get(object_id)} if page.kind != "charge" else {}
        fix_object(services, FixObject(page.account, page.kind, objects[object_id]), conn=conn, **known)
    with conn.transaction():
        fixed = _mark_fixed(conn, run, page, objects)
        _advance(conn, run, tally, page, lane, fixed=fixed, matched=matched)
    telemetry.drift(page.kind, fixed=fixed)
    return items


def _mark_fixed(conn, run: Run, page: Page, objects: dict[str, dict]) -> int:
    """Mark fixed the page's recorded items (of this run, found now or by a worker that died before
    marking them) whose objects no longer differ; returns how many."""
    api_account = to_api(page.account)
    unfixed = [oid for oid in dict.fromkeys(r["object"] for r in drift_rows.recorded(
        conn, run.id, api_account, list(objects)) if not r["fixed"]) if oid in objects]
    if not unfixed:
        return 0
    local = local_rows(conn, page.kind, page.account, [objects[oid] for oid in unfixed])
    still = {(oid, d["field"]) for oid in unfixed for d in differences(page.kind, objects[oid], local.get(oid))}
    return drift_rows.mark_fixed(conn, run.id, api_account, unfixed, still)


def _advance(conn, run: Run, tally: Tally, page: Page, lane: str, *, fixed: int, matched: list[str]) -> None:
    checked, progress = tally.add(page)
    if page.seen:
        drift_rows.see(conn, run.id, page.account, page.kind, page.seen)
    drift_rows.see(conn, run.id, page.account, PLACEHOLDER, matched)
    reconciliations.advance(conn, run.id, lane=lane,
                            at={"account": to_api(page.account), "kind": page.phase, "after": page.after},
                            checked=checked, progress=progress, fixed=fixed)
