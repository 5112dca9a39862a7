"""Reconciliation runs, end to end: records made by signed webhooks, Stripe (faked) drifting while our
webhook was down, then POST /admin/api/reconciliations → RQ job → worker → GET report, and
`teachery-sync reconcile` (in-process, CliRunner) on the same code.
"""
from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest
from click.testing import CliRunner

from teachery_sync.cli import main
from tests.fake_stripe import shared_server
from tests.stripe_events import DAY, T0, charge, customer, deleted_customer, event, iso, refund, subscription
from tests.support import TEST_DATABASE_URL, TEST_REDIS_URL
from workers.queueing import reconciliation_queue

CUS, CH, RE, SUB, NEW_SUB = "cus_ReconJenny", "ch_ReconCharge1", "re_ReconRefund1", "sub_ReconSub1", "sub_ReconNever"
COURSE, YOGA = "course_recon", "course_yoga"
ACCT = "acct_1ReconCreator"
PAUSED = {"behavior": "void", "resumes_at": None}
ENV = {"DATABASE_URL": TEST_DATABASE_URL, "REDIS_URL": TEST_REDIS_URL, "STRIPE_API_KEY": "sk_test_123"}
TABLES = ("customers", "subscriptions", "payments", "refunds", "enrollments", "activity")
CONTRACT_KEYS = ["id", "status", "dry_run", "scope", "started_at", "finished_at", "checked", "fixed", "drift"]
REPORT_KEYS = CONTRACT_KEYS + ["drift_count", "next_drift_after", "progress", "resumed", "trigger", "applies"]


def _stripe() -> dict:
    """The fake Stripe the test's `stripe_api` fixture set up: this process's shared server."""
    return {"STRIPE_API_BASE": shared_server().url}


def jenny(name="Jenny Rosen", cus=CUS):
    return customer(cus, email=f"{cus.lower()}@example.com", name=name, created=T0)


def paid_charge(refund_status="succeeded", ch=CH, cus=CUS, re_id=RE, created=T0 + 3600):
    refunds = [refund(re_id, charge=ch, amount=1000, status=refund_status, created=created + 60)]
    return charge(ch, customer=cus, amount=4900, created=created, metadata={"course_id": COURSE}, refunds=refunds)


def monthly(sub=SUB, cus=CUS, pause=None, created=T0, course=YOGA):
    return subscription(sub, customer=cus, created=created, metadata={"course_id": course}, pause_collection=pause)


def the_refund(status="succeeded", ch=CH, re_id=RE, created=T0 + 3660):
    return refund(re_id, charge=ch, amount=1000, status=status, created=created)


def in_sync(send, stripe_api, account=None, cus=CUS, name="Jenny Rosen", suffix=""):
    """One customer with a refunded charge and a subscription, recorded from webhooks, and Stripe agreeing."""
    ch, re_id, sub = CH + suffix, RE + suffix, SUB + suffix
    objects = [jenny(name, cus), paid_charge(ch=ch, cus=cus, re_id=re_id),
               the_refund(ch=ch, re_id=re_id), monthly(sub, cus)]
    stripe_api.put(*objects, account=account)
    send(event("customer.created", objects[0], created=T0, account=account),
         event("charge.refunded", objects[1], created=T0 + 3660, account=account),
         event("customer.subscription.created", objects[3], created=T0, account=account))


def drift_in_stripe(stripe_api, account=None):
    """What happened in Stripe while our webhook endpoint was down."""
    stripe_api.put(jenny("Jenny Renamed"),  # renamed in the Dashboard
                     paid_charge("failed"), the_refund("failed"),  # the refund failed: its amount is back
                     monthly(pause=PAUSED),  # collection paused in the Dashboard
                     monthly(NEW_SUB, created=T0 + 2 * DAY, course="course_new"),  # a subscription we never saw
                     account=account)


EXPECTED_DRIFT = [
    {"object": CUS, "field": "name", "local": "Jenny Rosen", "stripe": "Jenny Renamed"},
    {"object": CH, "field": "amount_refunded", "local": 1000, "stripe": 0},
    {"object": RE, "field": "status", "local": "succeeded", "stripe": "failed"},
    {"object": NEW_SUB, "field": "exists", "local": False, "stripe": True},  # Stripe lists newest first
    {"object": SUB, "field": "pause_collection", "local": None, "stripe": PAUSED},
]


def _drift(report, fixed=None):
    return [{k: v for k, v in item.items() if k != "fixed"} for item in report["drift"]
            if fixed is None or item["fixed"] is fixed]


def _rows(services):
    """Every record a reconciliation could touch, for "changed nothing" assertions."""
    with services.pool.connection() as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in TABLES}


@pytest.fixture
def reconcile(admin, run_worker):
    """POST a run, let the worker run it, return the report."""

    def _reconcile(**body):
        status, started = admin("POST", "/reconciliations", body)
        assert status == 202, started
        run_worker()
        status, report = admin("GET", f"/reconciliations/{started['id']}")
        assert status == 200
        assert report["status"] == "succeeded", report
        return report

    return _reconcile


def test_a_dry_run_reports_every_kind_of_drift_and_changes_nothing(services, send, stripe_api, reconcile):
    in_sync(send, stripe_api)
    drift_in_stripe(stripe_api)
    before = _rows(services)

    report = reconcile(dry_run=True)

    assert _drift(report) == EXPECTED_DRIFT
    assert (report["checked"], report["fixed"], report["dry_run"]) == (5, 0, True)
    assert all(item["fixed"] is False for item in report["drift"])
    assert _rows(services) == before  # no row, no activity


def test_a_run_fixes_the_drift_through_the_snapshots_and_a_second_run_finds_none(
        services, send, stripe_api, reconcile, profile):
    in_sync(send, stripe_api)
    drift_in_stripe(stripe_api)
    access_before = profile(CUS)["enrollments"]

    report = reconcile()

    # A page is fixed before the next is read: fixing the charge (whose object lists its refunds) fixed
    # the refund's status before the run read the refunds, so that drift is no longer there to report.
    assert _drift(report, fixed=True) == [d for d in EXPECTED_DRIFT if d["object"] != RE]
    assert (report["checked"], report["fixed"], report["drift_count"]) == (5, 4, 4)
    now = profile(CUS)
    assert now["name"] == "Jenny Renamed"
    [paid] = now["payments"]
    assert (paid["amount_refunded"], paid["status"], paid["refunds"][0]["status"]) == (0, "succeeded", "failed")
    subs = {s["stripe_subscription_id"]: s for s in now["subscriptions"]}
    assert subs[SUB]["pause_collection"] == PAUSED
    assert (subs[NEW_SUB]["status"], subs[NEW_SUB]["course_id"]) == ("active", "course_new")
    assert now["enrollments"] == access_before  # rules 1 and 4: neither a refund nor a pause touches access
    fixes = [a for a in now["activity"] if a["origin"] == "reconciliation"]
    assert {a["kind"] for a in fixes} >= {"customer.updated", "refund.failed", "subscription.paused",
                                          "subscription.created"}
    assert all(a["stripe_event_id"] is None for a in fixes)

    second = reconcile()
    assert (second["drift"], second["checked"], second["fixed"]) == ([], 5, 0)


def test_a_later_stripe_event_still_wins_over_a_fix_and_an_older_one_does_not(
        send, stripe_api, reconcile, profile):
    in_sync(send, stripe_api)
    drift_in_stripe(stripe_api)
    reconcile()

    send(event("customer.updated", jenny("Before The Fix"), created=T0 - 1))
    assert profile(CUS)["name"] == "Jenny Renamed"
    send(event("customer.updated", jenny("Renamed Again"), created=T0 + 1))
    send(event("customer.subscription.updated", monthly(), created=T0 + 1))  # resumed after the fix
    assert profile(CUS)["name"] == "Renamed Again"
    assert {s["stripe_subscription_id"]: s["pause_collection"] for s in profile(CUS)["subscriptions"]}[SUB] is None


def test_a_customer_deleted_in_stripe_is_marked_and_kept(send, stripe_api, reconcile, profile):
    in_sync(send, stripe_api)
    stripe_api.put(deleted_customer(CUS))

    report = reconcile()

    assert _drift(report, fixed=True) == [{"object": CUS, "field": "deleted_in_stripe", "local": False,
                                           "stripe": True}]
    now = profile(CUS)
    assert (now["deleted_in_stripe"], now["name"]) == (True, "Jenny Rosen")
    assert [e["access"] for e in now["enrollments"]] == ["active"]


@pytest.mark.slow  # a minute or half of one: `make test-all`
def test_customers_stripe_no_longer_lists_are_found_page_by_page(admin, run_worker, stripe_api, reconcile):
    """The unlisted phase reads our live customers missing from the run's listing by keyset pages of 100."""
    many = [customer(f"cus_Gone{i:04d}", email=f"g{i}@example.com", name=f"G {i}", created=T0 + i) for i in range(250)]
    stripe_api.put(*many)
    assert reconcile()["fixed"] == 250  # our records of them
    stripe_api.put(*(deleted_customer(f"cus_Gone{i:04d}") for i in range(0, 250, 2)))  # 125 deleted in Stripe
    stripe_api.calls.clear()

    report = reconcile(dry_run=True)

    assert report["drift_count"] == 125 and report["checked"] == 250
    assert [d["object"] for d in report["drift"]] == [f"cus_Gone{i:04d}" for i in range(0, 250, 2)]  # id order
    assert {d["field"] for d in report["drift"]} == {"deleted_in_stripe"}
    asked = [c["path"] for c in stripe_api.calls if c["path"].startswith("/v1/customers/")]
    assert sorted(asked) == [f"/v1/customers/cus_Gone{i:04d}" for i in range(0, 250, 2)]  # only the unlisted
    assert reconcile()["fixed"] == 125


def test_connected_accounts_are_never_mixed(send, stripe_api, reconcile, profile):
    in_sync(send, stripe_api)  # the platform: in step
    in_sync(send, stripe_api, account=ACCT, name="Jenny At Creator")  # the same ids in a connected account
    stripe_api.put(jenny("Renamed At Creator"), account=ACCT)

    report = reconcile()

    assert _drift(report, fixed=True) == [{"object": CUS, "field": "name", "local": "Jenny At Creator",
                                           "stripe": "Renamed At Creator"}]
    assert report["checked"] == 8
    assert profile(CUS, ACCT)["name"] == "Renamed At Creator"
    assert profile(CUS)["name"] == "Jenny Rosen"
    listed = {(c["path"], c["account"]) for c in stripe_api.calls if c["method"] == "GET"}
    assert {account for _, account in listed} == {None, ACCT}
    assert ("/v1/subscriptions", ACCT) in listed and ("/v1/subscriptions", None) in listed


def test_scope_by_account(send, stripe_api, reconcile):
    in_sync(send, stripe_api)
    in_sync(send, stripe_api, account=ACCT)
    drift_in_stripe(stripe_api)  # platform drift: out of scope

    report = reconcile(account=ACCT, dry_run=True)

    assert (report["drift"], report["checked"]) == ([], 4)
    assert report["scope"] == {"account": ACCT, "customer": None, "since": None}
    assert {c["account"] for c in stripe_api.calls} == {ACCT}


def test_scope_by_customer(send, stripe_api, reconcile):
    in_sync(send, stripe_api)
    in_sync(send, stripe_api, cus="cus_ReconOther", name="Other", suffix="o")
    stripe_api.put(jenny("Other Renamed", "cus_ReconOther"))  # out of scope
    drift_in_stripe(stripe_api)

    report = reconcile(customer=CUS, dry_run=True)

    assert _drift(report) == EXPECTED_DRIFT
    assert report["checked"] == 5
    queries = {c["path"]: parse_qs(c["query"]) for c in stripe_api.calls}
    assert "/v1/customers" not in queries and f"/v1/customers/{CUS}" in queries
    assert queries["/v1/charges"]["customer"] == [CUS]
    assert queries["/v1/subscriptions"] == {"customer": [CUS], "status": ["all"], "limit": ["100"]}
    assert queries["/v1/refunds"]["charge"] == [CH]


def test_scope_by_since(send, stripe_api, reconcile):
    in_sync(send, stripe_api)
    drift_in_stripe(stripe_api)

    report = reconcile(since=iso(T0 + DAY), dry_run=True)

    assert _drift(report) == [{"object": NEW_SUB, "field": "exists", "local": False, "stripe": True}]
    assert report["checked"] == 1
    assert report["scope"]["since"] == iso(T0 + DAY)
    assert {parse_qs(c["query"])["created[gte]"][0] for c in stripe_api.calls} == {str(T0 + DAY)}


def test_the_job_path_and_the_report_shape(services, send, stripe_api, admin, run_worker):
    in_sync(send, stripe_api)
    stripe_api.put(monthly(pause={"behavior": "keep_as_draft", "resumes_at": T0 + 9 * DAY}))

    status, started = admin("POST", "/reconciliations", {"account": None, "customer": CUS, "dry_run": False})
    assert (status, list(started)) == (202, ["id"])
    status, queued = admin("GET", f"/reconciliations/{started['id']}")
    assert (status, queued["status"], queued["started_at"], queued["drift"]) == (200, "queued", None, [])
    assert (services.queue.count, reconciliation_queue(services.queue).count) == (0, 1)  # never on the events' queue

    run_worker()

    status, report = admin("GET", f"/reconciliations/{started['id']}")
    assert list(report) == REPORT_KEYS
    assert report["id"] == started["id"] and report["status"] == "succeeded" and report["dry_run"] is False
    assert report["scope"] == {"account": None, "customer": CUS, "since": None}
    assert report["started_at"] <= report["finished_at"] and report["finished_at"].endswith("Z")
    assert (report["checked"], report["fixed"]) == (4, 1)
    assert report["drift"] == [{"object": SUB, "field": "pause_collection", "local": None,
                                "stripe": {"behavior": "keep_as_draft", "resumes_at": iso(T0 + 9 * DAY)},
                                "fixed": True}]
    assert list(report["drift"][0]) == ["object", "field", "local", "stripe", "fixed"]


def test_a_run_that_crashes_ends_failed_with_its_error(send, stripe_api, admin, run_worker):
    stripe_api.down = True

    status, started = admin("POST", "/reconciliations", {})
    run_worker()

    status, report = admin("GET", f"/reconciliations/{started['id']}")
    assert (report["status"], report["finished_at"] is not None) == ("failed", True)
    assert "Stripe" in report["error"]


@pytest.mark.parametrize("body", [
    {"account": "nope"}, {"account": 12}, {"customer": "ch_123"}, {"customer": ["cus_1"]},
    {"since": "last tuesday"}, {"since": 1735689600}, {"dry_run": "yes"}, {"dry_run": 1},
    {"dryrun": True}, ["account"],
])
def test_bad_requests_are_400(admin, services, body):
    status, answer = admin("POST", "/reconciliations", body)

    assert status == 400 and isinstance(answer["error"], str), answer
    with services.pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM reconciliation_runs").fetchone()[0] == 0


def test_a_body_that_is_not_json_is_400(client):
    response = client.post("/admin/api/reconciliations", data=b"{not json",
                           headers={"Authorization": "Bearer test-admin-token", "Content-Type": "application/json"})
    assert response.status_code == 400 and "error" in response.get_json()


def test_unknown_runs_are_404_and_a_wrong_token_is_401(admin, client):
    assert admin("GET", "/reconciliations/no-such-run")[0] == 404
    assert admin("GET", "/reconciliations/00000000-0000-0000-0000-000000000000")[0] == 404
    assert client.post("/admin/api/reconciliations", json={}).status_code == 401
    assert client.get("/admin/api/reconciliations/x", headers={"Authorization": "Bearer wrong"}).status_code == 401


# --- the command line ------------------------------------------------------------------------------

def cli(*args, env=None):
    return CliRunner().invoke(main, ["reconcile", *args], env={**ENV, **_stripe(), **(env or {})})


def test_the_command_runs_the_same_reconciliation_and_prints_its_report(services, send, stripe_api, admin):
    in_sync(send, stripe_api)
    drift_in_stripe(stripe_api)
    before = _rows(services)

    dry = cli("--dry-run", "--json")

    assert dry.exit_code == 0, dry.output
    progress = dry.stderr.splitlines()[-1]  # the bar's last state: objects checked of the guess, rate, ETA
    assert "objects checked" in progress and " 5/5 " in progress and "/s" in progress and "ETA" in progress
    report = json.loads(dry.stdout)
    assert list(report) == REPORT_KEYS and _drift(report) == EXPECTED_DRIFT and report["dry_run"] is True
    assert _rows(services) == before
    assert admin("GET", f"/reconciliations/{report['id']}")[1] == report

    real = cli("--customer", CUS)

    assert real.exit_code == 0, real.output
    assert "succeeded: 5 checked, 4 drifted, 4 fixed" in real.stdout  # the charge's fix fixed its refund
    assert '"drift"' not in real.stdout, "the table, not the JSON as well"
    again = json.loads(cli("--json").stdout)
    assert (again["drift"], again["fixed"]) == ([], 0)


def test_the_command_prints_names_as_they_are_never_escaped(services, send, stripe_api):
    in_sync(send, stripe_api, name="Zoë")
    stripe_api.put(jenny("Zoë Å"))

    table, report = cli("--dry-run"), cli("--dry-run", "--json")

    assert table.exit_code == 0 and report.exit_code == 0, (table.output, report.output)
    assert '"Zoë Å"' in table.stdout and '"drift"' not in table.stdout
    assert '"stripe": "Zoë Å"' in report.stdout and "\\u" not in report.stdout + table.stdout


@pytest.mark.parametrize("args, env, reason", [
    (["--since", "soon"], {}, "since must be an ISO 8601 time"),
    (["--account", "creator"], {}, "account must be"),
    ([], {"STRIPE_API_KEY": ""}, "STRIPE_API_KEY is not set"),
])
def test_the_command_refuses_with_one_line(services, stripe_api, args, env, reason):
    result = cli(*args, env=env)

    assert result.exit_code != 0
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [f"error: {reason}"] \
        or reason in result.stderr.splitlines()[-1], result.output


def test_the_command_fails_when_stripe_is_down(services, stripe_api):
    stripe_api.down = True

    result = cli("--json")

    assert result.exit_code != 0
    assert json.loads(result.stdout)["status"] == "failed"
    assert result.stderr.splitlines()[-1].startswith("error: reconciliation failed: Stripe API error (503)")


def test_a_run_left_running_by_a_killed_worker_is_queued_again(services, admin):
    """The job holds an advisory lock while it runs; a run marked running that nobody holds is abandoned:
    queued again (its job too, under the same id), to be resumed."""
    import psycopg

    from domain import reconciliations
    from workers.worker import sweep_stranded

    status, body = admin("POST", "/reconciliations", {"dry_run": True})
    run_id = body["id"]
    reconciliation_queue(services.queue).remove(f"reconciliation-{run_id}")  # taken by a worker, which then died
    with services.pool.connection() as conn:
        conn.execute("UPDATE reconciliation_runs SET status = 'running' WHERE id = %s", (run_id,))
    with psycopg.connect(services.settings.database_url, autocommit=True) as holder:
        reconciliations.hold(holder, run_id)  # a live job: left alone
        sweep_stranded(services)
        assert admin("GET", f"/reconciliations/{run_id}")[1]["status"] == "running"
    sweep_stranded(services)  # its connection is gone, as a killed worker's would be
    report = admin("GET", f"/reconciliations/{run_id}")[1]
    assert (report["status"], report["resumed"], report["finished_at"]) == ("queued", 1, None)
    assert reconciliation_queue(services.queue).job_ids == [f"reconciliation-{run_id}"]
    # A run whose workers keep dying is given up after MAX_RESUMES resumes.
    with services.pool.connection() as conn:
        conn.execute("UPDATE reconciliation_runs SET status = 'running', resumed = %s WHERE id = %s",
                     (reconciliations.MAX_RESUMES, run_id))
    sweep_stranded(services)
    report = admin("GET", f"/reconciliations/{run_id}")[1]
    assert (report["status"], report["resumed"]) == ("failed", reconciliations.MAX_RESUMES), report
    assert report["error"] == f"its worker stopped {reconciliations.MAX_RESUMES + 1} times before it finished"
