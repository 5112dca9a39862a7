"""Reconciliations: the runs, newest first; start one; a run's page with its progress and drift.

Starting a run and fixing a dry run's drift go through the API's own code (workers.commands.
ReconciliationAsked, workers.reconciliation.create / create_applying / enqueue): the same rules, the
same refusals, said as sentences on the page instead of JSON.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from domain import reconciliation_drift as drift_rows
from domain import reconciliation_views as views
from domain import reconciliations as runs
from domain.ids import is_id
from domain.reconciliations import MAX_QUEUED_RUNS, NotApplicable, Run, ScopeBusy, TooManyQueued
from webhooks import current
from webhooks.auth import own_runs, scope, scoped_run, sees_run
from webhooks.errors import ApiError
from webhooks.reconciliation_report import report
from webhooks.schemas import drift_cursor, drift_seq
from workers import reconciliation
from workers.commands import CommandRefused, ReconciliationAsked

bp = Blueprint("console_reconciliations", __name__)

RUNS_PAGE = 50
DRIFT_COUNTED = 1_000  # the list counts each run's drift up to this; more shows as "1,000+"
DRIFT_PAGE = 100
DRIFT_EXACT = 100_000  # a finished run's page counts its drift up to this; more shows as "100,000+"
POLL_SECONDS = 2
FINISHED = ("succeeded", "failed")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
REDIS_DOWN = ("Redis did not answer, so the run could not be queued (it is kept, marked failed, so that "
              "its scope is free). Nothing was changed. Try again in a minute.")


@dataclass
class Problem:
    """Why an action was refused, for the page: a sentence, and the run it is about when there is one."""
    message: str
    run_id: str | None = None


# --- the list of runs, and starting one ------------------------------------------------------------

@bp.get("/reconciliations", endpoint="runs")
def list_runs():
    return _runs_page()


@bp.post("/reconciliations", endpoint="start")
def start_run():
    form = {name: request.form.get(name, "").strip() for name in ("account", "customer", "since", "mode")}
    if scope() is not None:  # a scoped token reconciles its own account and names no other (as the API)
        if form["account"] and form["account"] != own_runs():
            raise ApiError(f"There is no account {form['account']}.", 404)
        form["account"] = ""  # the run's account is the token's, set below
    body, problem = _asked(form, fix_confirmed=request.form.get("confirm_fix") == "yes")
    if problem:
        return _runs_page(form=form, problem=Problem(problem)), 400
    services = current.services()
    try:
        asked = ReconciliationAsked.parse(body)
    except CommandRefused as exc:
        return _runs_page(form=form, problem=Problem(_sentence(exc.message))), 400
    try:
        run_id = reconciliation.create(services, scoped_run(asked.scope), bool(asked.dry_run),
                                       max_queued=MAX_QUEUED_RUNS)
    except ScopeBusy as exc:
        return _runs_page(form=form, problem=Problem(
            "A run of this scope is already queued or running: wait for it to finish.", exc.run_id)), 409
    except TooManyQueued as exc:
        return _runs_page(form=form, problem=Problem(_sentence(str(exc)))), 429
    if not _queued(services, run_id):
        return _runs_page(form=form, problem=Problem(REDIS_DOWN, run_id)), 503
    flash(("Dry run queued: it changes nothing." if asked.dry_run else
           "Fixing run queued: it will change our records where they differ from Stripe's.")
          + f" Started by {g.actor}.", "success")
    return redirect(url_for(".run", run_id=run_id))


def _asked(form: dict, *, fix_confirmed: bool) -> tuple[dict, str | None]:
    """The API body the form asks for, or why the form cannot be sent as it is."""
    if form["mode"] not in ("dry_run", "fix"):
        return {}, "Choose a dry run (reports drift, changes nothing) or a fixing run."
    if form["mode"] == "fix" and not fix_confirmed:
        return {}, ("A fixing run changes our records to match Stripe's. Tick the box that says you mean it, "
                    "or choose a dry run first to see the drift.")
    body: dict = {"dry_run": form["mode"] == "dry_run"}
    for name in ("account", "customer"):
        if form[name]:
            body[name] = form[name]
    if form["since"]:  # the date input gives a day: from its start, UTC
        if not _is_day(form["since"]):
            return {}, "“Created since” must be a day, written 2026-11-01 (year, month, day)."
        body["since"] = f"{form['since']}T00:00:00Z"
    return body, None


def _is_day(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return _DATE.fullmatch(text) is not None


def _sentence(message: str) -> str:
    """An API message as a sentence of the page (where the API says null, the form has an empty field)."""
    message = message.replace(" or null", ", or left empty")
    text = message[:1].upper() + message[1:]
    return text if text.endswith(".") else text + "."


def _queued(services, run_id: str) -> bool:
    """Queue the run's job; False when Redis refused (the run is then marked failed)."""
    try:
        reconciliation.enqueue(services, run_id)
    except Exception:  # any Redis failure: the page says so; enqueue marked the run failed
        return False
    return True


def _runs_page(*, form: dict | None = None, problem: Problem | None = None) -> str:
    before = request.args.get("before") or None
    if before is not None and not is_id(before):
        before = None
        problem = problem or Problem("That “Older” link is not one this page made: showing the newest runs.")
    if scope() is not None:  # the account field of a scoped token's form: its account, fixed
        form = (form or {"mode": "dry_run"}) | {"account": own_runs()}
    with current.services().pool.connection() as conn:
        listed = runs.recent(conn, before=before, limit=RUNS_PAGE + 1, account=own_runs())
        page = listed[:RUNS_PAGE]
        drift = views.drift_counts(conn, [r.id for r in page], DRIFT_COUNTED)
    older = page[-1].id if len(listed) > RUNS_PAGE else None
    return render_template("console/reconciliations.html", runs=page, drift=drift, drift_counted=DRIFT_COUNTED,
                           older=older, newest=before is None, form=form or {"mode": "dry_run"}, problem=problem)


# --- one run --------------------------------------------------------------------------------------

@bp.get("/reconciliations/<id:run_id>", endpoint="run")
def run_page(run_id: str):
    return _run_page(run_id)


@bp.get("/reconciliations/<id:run_id>/progress", endpoint="progress")
def progress(run_id: str):
    """The part of a run's page that polls while the run is queued or running; once it has finished,
    htmx reloads the whole page (HX-Refresh) to show the drift."""
    with current.services().pool.connection() as conn:
        run = _get(conn, run_id)
        if run.status in FINISHED:
            return "", 200, {"HX-Refresh": "true"}
        figures = report(conn, run, limit=1)
    return render_template("console/reconciliation_progress.html", run=run, figures=figures)


@bp.post("/reconciliations/<id:run_id>/apply", endpoint="apply")
def apply(run_id: str):
    services = current.services()
    with services.pool.connection() as conn:
        _get(conn, run_id)  # another account's run: 404, as if it did not exist
    try:
        new_id = reconciliation.create_applying(services, run_id, max_queued=MAX_QUEUED_RUNS)
    except NotApplicable as exc:
        return _run_page(run_id, Problem(_sentence(str(exc)))), 409
    except ScopeBusy as exc:
        return _run_page(run_id, Problem("A fixing run of this drift is already queued or running: wait for it "
                                         "to finish.", exc.run_id)), 409
    except TooManyQueued as exc:
        return _run_page(run_id, Problem(_sentence(str(exc)))), 429
    if new_id is None:
        raise ApiError(f"reconciliation {run_id} not found", 404)
    if not _queued(services, new_id):
        return _run_page(run_id, Problem(REDIS_DOWN, new_id)), 503
    flash(f"Fixing run queued: it re-reads each object this dry run found drifted and fixes only what still "
          f"differs. Started by {g.actor}.", "success")
    return redirect(url_for(".run", run_id=new_id))


def _get(conn, run_id: str) -> Run:
    """The run, or a 404: also for another account's run when the token is scoped to one account."""
    run = runs.get(conn, run_id)
    if run is None or not sees_run(run):
        raise ApiError(f"There is no reconciliation run {run_id}.", 404)
    return run


def _run_page(run_id: str, problem: Problem | None = None) -> str:
    after, bad_cursor = _drift_after(request.args.get("drift_after"))
    if bad_cursor and problem is None:
        problem = Problem("That “More” link is not one this page made: showing the drift from the start.")
    with current.services().pool.connection() as conn:
        run = _get(conn, run_id)
        if run.status in FINISHED:  # counted up to DRIFT_EXACT: a million items would take a tenth of a second
            counted = views.drift_counts(conn, [run.id], DRIFT_EXACT)[run.id]
            figures = {"drift_count": counted, "drift_more": counted >= DRIFT_EXACT}
            items = drift_rows.page(conn, run.id, after, DRIFT_PAGE + 1)
        else:
            figures = report(conn, run, limit=1)  # the API's figures: drift so far, rate and time left
            items = []
        more = drift_cursor(items[DRIFT_PAGE - 1]["seq"]) if len(items) > DRIFT_PAGE else None
        items = items[:DRIFT_PAGE]
        owners = views.customers_of(conn, run.id, [item["seq"] for item in items])
        applied_by = views.applied_by(conn, run.id) if run.dry_run else []
    return render_template("console/reconciliation.html", run=run, figures=figures, groups=_grouped(items, owners),
                           more=more, paged=after > 0, applied_by=applied_by, problem=problem,
                           poll_seconds=POLL_SECONDS, finished=run.status in FINISHED)


def _drift_after(text: str | None) -> tuple[int, bool]:
    """The drift item a "More" link starts after (0: the start), and whether the link was not ours."""
    if not text:
        return 0, False
    try:
        return drift_seq(text), False
    except ValueError:
        return 0, True


def _grouped(items: list[dict], owners: dict[int, dict]) -> list[dict]:
    """The page's drift items by account and object type, in the order the run found them."""
    groups: dict[tuple, dict] = {}
    for item in items:
        key = (item["account"], item["kind"])
        group = groups.setdefault(key, {"account": item["account"], "kind": item["kind"], "items": []})
        group["items"].append({**item, "owner": owners.get(item["seq"]), "differed": _differed(item)})
    return list(groups.values())


def _differed(item: dict) -> str:
    """What differed, in words: the field, or whether the object exists on each side."""
    if item["field"] == "exists":
        if item["stripe"] and not item["local"]:
            return "Stripe has it; we have no record of it"
        if item["local"] and not item["stripe"]:
            return "we hold it; Stripe no longer has it"
    return item["field"].replace("_", " ")


@bp.app_template_filter("drift_value")
def drift_value(value) -> str:
    """A drift value as the table prints it: text as is, nothing as "none", the rest as compact JSON."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(", ", ": "), sort_keys=True)


@bp.app_template_filter("duration")
def duration(seconds: float) -> str:
    """12.5 → "about 13 s", 130 → "about 2 min 10 s", 7300 → "about 2 h 2 min"."""
    whole = max(round(seconds), 0)
    if not whole:
        return "under a second"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"about {hours} h {minutes} min"
    return f"about {minutes} min {secs} s" if minutes else f"about {secs} s"
