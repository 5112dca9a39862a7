"""The scheduled reconciliation runs (workers/scheduled.py), called as the clock's job calls them: the
nightly run's starting point (the previous success that covered every account, less an hour), the weekly
full run, one run per slot, a busy scope skipped, and one log line per drifted object."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import structlog
from psycopg.rows import dict_row
from structlog.testing import capture_logs

from domain import reconciliation_drift, reconciliations
from domain.reconciliations import Scope
from tests.stripe_events import T0, customer, event
from workers import jobs, reconciliation, scheduled

NIGHTLY, WEEKLY = "0 3 * * *", "0 4 * * 0"
AT_3 = datetime(2026, 12, 2, 3, 0, 0, 250_000, tzinfo=UTC)  # a job the clock enqueued at 03:00:00.25
SUNDAY_AT_4 = datetime(2026, 12, 6, 4, 0, 1, tzinfo=UTC)
ACCT = "acct_1SchedCreator"


@contextmanager
def captured(monkeypatch):
    """structlog's capture_logs, with the scheduled runs' logger made anew inside it: the module's own may
    have been cached with the real configuration by an earlier test (cache_logger_on_first_use)."""
    with capture_logs() as logs:
        monkeypatch.setattr(scheduled, "log", structlog.get_logger(scheduled.__name__))
        yield logs


def _runs(services) -> list[dict]:
    with services.pool.connection() as conn:
        return conn.cursor(row_factory=dict_row).execute(
            "SELECT id, trigger, status, dry_run, account, customer, since, changed_since, started_at"
            " FROM reconciliation_runs ORDER BY created_at").fetchall()


def _run(services, scope: Scope | None = None, dry_run: bool = False, trigger: str = "admin") -> str:
    """A run created and run as the admin API's job runs it; its id."""
    with services.pool.connection() as conn:
        run_id = reconciliations.create(conn, scope or Scope(), dry_run, trigger=trigger)
    assert reconciliation.run(services, run_id) == "succeeded"
    return run_id


def _started_at(services, run_id: str) -> datetime:
    with services.pool.connection() as conn:
        return reconciliations.get(conn, run_id).started_at


def jenny(name: str, email: str = "jenny.rosen@example.com", cus: str = "cus_SchedJenny") -> dict:
    return customer(cus, email=email, name=name, created=T0)


def test_nightly_without_a_previous_success_is_a_full_fixing_run(services, stripe_api, send, monkeypatch):
    """Drift in two accounts: fixed by the run, and logged one line per object (the fields of one object
    together, even when a page of drift rows cuts them apart)."""
    send(event("customer.created", jenny("Jenny Rosen"), created=T0),
         event("customer.created", jenny("Ada Lovelace", "ada@example.com", "cus_SchedAda"), created=T0,
               account=ACCT))
    stripe_api.put(jenny("Jenny Renamed", "jenny@example.org"))  # both fields changed in the Dashboard
    stripe_api.put(jenny("Ada King", "ada@example.com", "cus_SchedAda"), account=ACCT)
    monkeypatch.setattr(scheduled, "DRIFT_PAGE", 1)
    with captured(monkeypatch) as logs:
        assert scheduled.run_scheduled(services, "nightly", NIGHTLY, AT_3) == "succeeded"
    [run] = _runs(services)
    assert (run["trigger"], run["status"], run["dry_run"], run["account"], run["changed_since"]) == \
        ("nightly", "succeeded", False, None, None)
    # a line per drifted object (its accounts are read side by side: here ordered by account)
    drifted = sorted((line for line in logs if line["event"] == "reconciliation found drift"),
                     key=lambda line: line["account"] or "")
    assert [(line["account"], line["object"], line["fixed"], sorted(line["fields"])) for line in drifted] == [
        (None, "cus_SchedJenny", True, ["email", "name"]), (ACCT, "cus_SchedAda", True, ["name"])]
    assert {line["origin"] for line in drifted} == {"reconciliation"}
    # customer data: which field, not its values (the run's report has them)
    assert drifted[0]["fields"] == {"email": {"fixed": True}, "name": {"fixed": True}}
    assert "Renamed" not in repr(logs) and "jenny@example.org" not in repr(logs)
    finished = [line for line in logs if line["event"] == "scheduled reconciliation finished"]
    assert [(line["status"], line["drifted"]) for line in finished] == [("succeeded", 2)]
    with services.pool.connection() as conn:
        names = conn.execute("SELECT stripe_customer_id, name FROM customers ORDER BY 1").fetchall()
    assert names == [("cus_SchedAda", "Ada King"), ("cus_SchedJenny", "Jenny Renamed")]


def test_nightly_looks_back_from_the_previous_success_of_every_account(services, stripe_api):
    """changed_since = the start of the latest succeeded fixing run of every account, customer and object,
    less an hour; later runs of a part, dry runs and failed runs do not move it."""
    full = _run(services, trigger="weekly")
    _run(services, Scope(account=ACCT))
    _run(services, Scope(customer="cus_SchedJenny"))
    _run(services, Scope(since=datetime(2026, 1, 1, tzinfo=UTC)))
    _run(services, dry_run=True)
    with services.pool.connection() as conn:
        failed = reconciliations.create(conn, Scope(), False, trigger="nightly")
    stripe_api.down = True
    with pytest.raises(Exception, match="Stripe"):
        reconciliation.run(services, failed)
    stripe_api.down = False

    assert scheduled.run_scheduled(services, "nightly", NIGHTLY, AT_3) == "succeeded"
    nightly = _runs(services)[-1]
    assert nightly["trigger"] == "nightly"
    assert nightly["changed_since"] == _started_at(services, full) - timedelta(hours=1)

    # the next night starts from this one's start
    assert scheduled.run_scheduled(services, "nightly", NIGHTLY, AT_3 + timedelta(days=1)) == "succeeded"
    assert _runs(services)[-1]["changed_since"] == nightly["started_at"] - timedelta(hours=1)


def test_weekly_is_a_full_run_whatever_came_before(services, stripe_api):
    _run(services)
    assert scheduled.run_scheduled(services, "weekly", WEEKLY, SUNDAY_AT_4) == "succeeded"
    weekly = _runs(services)[-1]
    assert (weekly["trigger"], weekly["changed_since"], weekly["account"], weekly["since"]) == \
        ("weekly", None, None, None)


def test_a_slot_runs_once_however_many_jobs_the_clocks_enqueued(services, stripe_api, monkeypatch):
    """Two clocks enqueue one job each for 03:00; the second finds the slot taken. The next night is a new slot."""
    assert scheduled.run_scheduled(services, "nightly", NIGHTLY, AT_3) == "succeeded"
    with captured(monkeypatch) as logs:
        assert scheduled.run_scheduled(services, "nightly", NIGHTLY, AT_3 + timedelta(seconds=2)) is None
    assert [line["event"] for line in logs] == ["scheduled reconciliation skipped: another job has this slot"]
    assert len(_runs(services)) == 1
    assert scheduled.run_scheduled(services, "nightly", NIGHTLY, AT_3 + timedelta(days=1)) == "succeeded"
    assert scheduled.run_scheduled(services, "weekly", WEEKLY, SUNDAY_AT_4) == "succeeded"  # its own slots
    assert [run["trigger"] for run in _runs(services)] == ["nightly", "nightly", "weekly"]


def test_a_scope_in_progress_is_skipped(services, stripe_api, monkeypatch):
    with services.pool.connection() as conn:
        busy = reconciliations.create(conn, Scope(), False)  # queued by the admin API, not started yet
    with captured(monkeypatch) as logs:
        assert scheduled.run_scheduled(services, "weekly", WEEKLY, SUNDAY_AT_4) is None
    [skipped] = [line for line in logs if line["event"].startswith("scheduled reconciliation skipped")]
    assert (skipped["log_level"], skipped["busy_run_id"]) == ("warning", busy)
    assert [run["id"] for run in _runs(services)] == [busy]


def test_a_failed_run_fails_the_job_and_keeps_its_trigger(services, stripe_api):
    stripe_api.down = True
    with pytest.raises(Exception, match="Stripe"):
        scheduled.run_scheduled(services, "weekly", WEEKLY, SUNDAY_AT_4)
    [run] = _runs(services)
    assert (run["trigger"], run["status"]) == ("weekly", "failed")


def test_an_unknown_schedule_is_refused(services):
    with pytest.raises(ValueError, match="unknown schedule"):
        scheduled.run_scheduled(services, "hourly", NIGHTLY, AT_3)


def test_the_job_function_outside_rq_takes_the_slot_of_now(services, stripe_api):
    """workers.jobs.run_scheduled, as the worker calls it; outside an RQ job its slot is the latest before now."""
    yearly = "0 0 1 1 *"
    assert jobs.run_scheduled("weekly", yearly) == "succeeded"
    assert jobs.run_scheduled("weekly", yearly) is None
    assert [run["trigger"] for run in _runs(services)] == ["weekly"]
    this_year = datetime(datetime.now(UTC).year, 1, 1, tzinfo=UTC)
    assert services.redis.exists(scheduled.slot_key("weekly", this_year))


def test_an_objects_fields_are_one_line_when_another_lanes_rows_came_between(services, monkeypatch):
    """Two lanes record at once, so one object's drift rows need not be adjacent in `seq` order."""
    with services.pool.connection() as conn:
        run_id = reconciliations.create(conn, Scope(), False, trigger="nightly")
        for account, obj, field in ((None, "cus_LaneJenny", "email"), (ACCT, "cus_LaneAda", "name"),
                                    (None, "cus_LaneJenny", "name")):
            reconciliation_drift.record(conn, run_id, account, "customer",
                                        [{"object": obj, "field": field, "local": "a", "stripe": "b"}])
    monkeypatch.setattr(scheduled, "DRIFT_PAGE", 1)
    with captured(monkeypatch) as logs:
        assert scheduled.log_drift(services, run_id) == 2
    lines = sorted((line["account"] or "", line["object"], sorted(line["fields"])) for line in logs
                   if line["event"] == "reconciliation found drift")
    assert lines == [("", "cus_LaneJenny", ["email", "name"]), (ACCT, "cus_LaneAda", ["name"])]
