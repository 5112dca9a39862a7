"""The command line as an operator runs it: events, jobs, backfill, reconcile; exit codes and one-line errors."""
from __future__ import annotations

import json
import time

from tests.blackbox.helpers import buyer, check_subscription, expected_payment, payment_view
from tests.support import iso

ACCT = "acct_1BBCreatorC"


def one_line_error(done) -> str:
    assert done.returncode != 0, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    # One line of reason, last on stderr (a structured log line before it is tolerated).
    assert len(errors) == 1 and lines[-1] == errors[0], done.stderr
    assert "Traceback" not in done.stderr and "Usage:" not in done.stderr, done.stderr
    return errors[0]


def test_events_list_show_replay_and_jobs_failed(svc):
    fake = svc.fake
    cus = fake.create_customer(ACCT, "Grace Hopper", "grace@example.com")
    charge = fake.buy_course(ACCT, cus["id"], 3000, "course_cobol")
    events = fake.take_events()
    svc.deliver(events)
    svc.wait_settled()

    done = svc.cli("events", "list")
    assert done.returncode == 0, done.stderr
    for event in events:
        assert event["id"] in done.stdout
    assert f"{len(events)} event(s)" in done.stdout
    done = svc.cli("events", "list", "--json", "--type", "charge.succeeded")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert [(e["type"], e["account"], e["status"]) for e in listed] == [("charge.succeeded", ACCT, "processed")]

    charge_event = next(e for e in events if e["type"] == "charge.succeeded")
    done = svc.cli("events", "show", charge_event["id"], "--json")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["id"] == charge_event["id"] and shown["status"] == "processed"
    assert shown["payload"]["data"]["object"]["id"] == charge["id"]
    assert shown["changes"], "the records the event changed"

    before = svc.profile(cus["id"], ACCT)
    done = svc.cli("events", "replay", charge_event["id"])
    assert done.returncode == 0 and "queued 1 event" in done.stdout, (done.stdout, done.stderr)
    done = svc.cli("events", "replay", "--status", "processed")
    assert done.returncode == 0, done.stderr
    svc.wait_settled()
    after = svc.profile(cus["id"], ACCT)
    assert after["payments"] == before["payments"] and after["enrollments"] == before["enrollments"]
    assert len(after["activity"]) == len(before["activity"]), "a replay changes nothing"
    status, body = svc.admin("POST", f"/events/{charge_event['id']}/replay")
    assert status == 202, body

    one_line_error(svc.cli("events", "show", "evt_BBnope"))
    one_line_error(svc.cli("events", "replay", "evt_BBnope"))
    one_line_error(svc.cli("events", "replay"))
    assert svc.cli("events", "list", "--status", "bogus").returncode != 0

    done = svc.cli("jobs", "failed")
    assert done.returncode == 0 and "0 failed job(s)" in done.stdout, (done.stdout, done.stderr)
    one_line_error(svc.cli("jobs", "requeue"))


def test_ledger_commands_filter_show_attempts_and_refuse_unknown_ids(svc):
    fake = svc.fake
    ada = fake.create_customer(ACCT, "Ada L", "ada@example.com")
    charge = fake.buy_course(ACCT, ada["id"], 2000, "course_engines")
    bob = fake.create_customer(ACCT, "Bob B", "bob@example.com")
    events = fake.take_events()
    svc.deliver(events)
    svc.wait_settled()
    about_ada = {e["id"] for e in events
                 if ada["id"] in (e["data"]["object"]["id"], e["data"]["object"].get("customer"))}
    assert len(about_ada) >= 2

    _events_list_filters(svc, len(events), ada["id"], about_ada, charge["id"], bob["id"])
    _events_show_and_replay(svc, next(iter(about_ada)))
    _failed_reconciliation_listed_and_requeued(svc)


def _events_list_filters(svc, count: int, ada_id: str, about_ada: set[str], charge_id: str, bob_id: str) -> None:
    """`events list` by object, account and time; a bad --since or --account is one line."""
    done = svc.cli("events", "list", "--object", ada_id, "--json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert {e["id"] for e in listed} == about_ada
    assert all(e["source"] == "webhook" and "next_attempt_at" in e for e in listed)
    done = svc.cli("events", "list", "--object", charge_id)
    assert done.returncode == 0 and "source" in done.stdout and "next attempt" in done.stdout, done.stdout
    assert bob_id not in done.stdout
    for args in (("--account", "platform"), ("--since", iso(int(time.time()) + 3600)),
                 ("--object", "cus_BBnobody")):
        done = svc.cli("events", "list", *args)
        assert (done.returncode, done.stdout.strip()) == (0, "no events"), (args, done.stdout, done.stderr)
    done = svc.cli("events", "list", "--account", ACCT, "--since", iso(int(time.time()) - 3600))
    assert f"{count} event(s)" in done.stdout, done.stdout
    one_line_error(svc.cli("events", "list", "--since", "yesterday"))
    one_line_error(svc.cli("events", "list", "--account", "cus_123"))


def _events_show_and_replay(svc, event_id: str) -> None:
    """`events show` lists every attempt; `events replay` of unknown ids is one line, exit 1, nothing
    queued; with known ones, those are queued and the others named."""
    done = svc.cli("events", "show", event_id)  # a table, with every attempt
    assert done.returncode == 0, done.stderr
    assert "automatic" in done.stdout and "processed" in done.stdout and '"payload"' not in done.stdout

    done = svc.cli("events", "replay", "evt_BBnope")
    assert "not in the ledger" in one_line_error(done) and done.stdout == ""
    done = svc.cli("events", "replay", event_id, "evt_BBnope2")
    assert one_line_error(done) == "error: not in the ledger: evt_BBnope2"
    assert "queued 1 event(s) for replay" in done.stdout
    svc.wait_settled()
    done = svc.cli("events", "show", event_id, "--json")
    assert [a["kind"] for a in json.loads(done.stdout)["attempts_log"]] == ["automatic", "replay"]


def _failed_reconciliation_listed_and_requeued(svc) -> None:
    """A reconciliation that Stripe refuses fails into RQ's failed registry: listed with its times."""
    from tests.fake_stripe import StripeError

    svc.fake.fail_next.append(("GET", "/v1/customers", StripeError(400, "invalid_request_error", "refused (fake)")))
    status, body = svc.admin("POST", "/reconciliations", {"account": ACCT})
    assert status == 202, body
    deadline = time.time() + 20
    while svc.admin("GET", f"/reconciliations/{body['id']}")[1]["status"] != "failed" and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    done = svc.cli("jobs", "failed", "--json")
    assert done.returncode == 0, done.stderr
    failed = {j["id"]: j for j in json.loads(done.stdout)}
    job = failed[f"reconciliation-{body['id']}"]
    assert job["enqueued_at"] and job["ended_at"] and job["enqueued_at"] <= job["ended_at"], job
    done = svc.cli("jobs", "requeue", "--all")
    assert done.returncode == 0, done.stderr


def test_unreachable_database_or_redis_is_one_line(svc):
    bad_db = {"DATABASE_URL": "postgresql://root@127.0.0.1:1/teachery_sync_blackbox"}
    for args in (("events", "list"), ("migrate",), ("jobs", "failed"), ("reconcile", "--dry-run"),
                 ("backfill", "--since", iso(int(time.time()) - 86_400))):
        line = one_line_error(svc.cli(*args, env=bad_db, timeout=30))
        assert "PostgreSQL" in line or "database" in line.lower(), (args, line)
    line = one_line_error(svc.cli("jobs", "failed", env={"REDIS_URL": "redis://127.0.0.1:1/9"}, timeout=30))
    assert "Redis" in line
    line = one_line_error(svc.cli("events", "list", env={"DATABASE_URL": "this is not a dsn"}, timeout=30))
    assert "web" not in line
    done = svc.cli("web", "--port", "1", env={"STRIPE_WEBHOOK_SECRET": ""}, timeout=30)
    assert "STRIPE_WEBHOOK_SECRET" in one_line_error(done)


def test_backfill_fetches_missed_events_for_known_accounts(svc):
    now = int(time.time())
    fake = svc.fake
    fake.reset("2024-06-20", now=now - 3 * 86_400)
    fake.create_customer(ACCT, "Linus T", "linus@example.com")
    known = fake.take_events()
    svc.deliver(known)  # the receiver learns about ACCT
    made = []
    for i in range(8):  # > 100 events: two pages of /v1/events
        c = fake.create_customer(ACCT, f"Missed {i}", f"missed{i}@example.com")
        charge = fake.buy_course(ACCT, c["id"], 2500, "course_missed")
        fake.refund(ACCT, charge["id"], 500)
        sub, sub_charge = fake.subscribe(ACCT, c["id"], 900, "course_sub")
        fake.update_subscription(ACCT, sub["id"], {"pause_collection": {"behavior": "keep_as_draft",
                                                                          "resumes_at": now + 86_400}})
        made.append((c, charge, sub, sub_charge))
    missed = fake.take_events()
    assert len(missed) + len(known) > 100
    svc.wait_settled()

    since = iso(now - 4 * 86_400)
    done = svc.cli("backfill", "--since", since)
    assert done.returncode == 0, (done.stdout, done.stderr)
    reads = [r for r in fake.requests if r["path"] == "/v1/events"]
    assert {r["account"] for r in reads} >= {ACCT, None}
    assert any(r["params"].get("starting_after") for r in reads), "pagination followed"
    ledger = svc.wait_settled(timeout=40)
    assert {e["id"] for e in ledger} == {e["id"] for e in known + missed}
    assert all(e["account"] == ACCT for e in ledger)
    for c, *_ in made:
        profile = svc.profile(c["id"], ACCT)
        for p in profile["payments"]:
            assert payment_view(p) == expected_payment(fake, ACCT, p["stripe_charge_id"])
        check_subscription(fake, ACCT, profile["subscriptions"][0])

    # Again: everything is already known, nothing is applied twice.
    done = svc.cli("backfill", "--since", since, "--account", ACCT)
    assert done.returncode == 0, done.stderr
    assert len(svc.wait_settled()) == len(known) + len(missed)

    one_line_error(svc.cli("backfill", "--since", iso(int(time.time()) + 2 * 86_400)))
    one_line_error(svc.cli("backfill", "--since", "last tuesday"))
    one_line_error(svc.cli("backfill", "--since", since, "--account", "cus_123"))
    one_line_error(svc.cli("backfill", "--since", since, env={"STRIPE_API_KEY": ""}))
    one_line_error(svc.cli("backfill", "--since", since, env={"STRIPE_API_BASE": "http://127.0.0.1:1"}))


def test_reconcile_dry_run_reports_then_real_run_fixes(svc):
    fake = svc.fake
    cus, charge, sub = buyer(svc, ACCT, "Margaret H", "margaret@example.com", course="course_apollo", amount=6000,
                             subscribes_to="course_moon", monthly=1200)
    # Drift: changes made in the Dashboard while our webhook was down (events never delivered).
    fake.update_customer(ACCT, cus["id"], {"name": "Margaret Hamilton"})
    fake.update_subscription(ACCT, sub["id"], {"pause_collection": {"behavior": "void", "resumes_at": None}})
    refund = fake.refund(ACCT, charge["id"], 1500)
    fake.take_events()
    before = svc.profile(cus["id"], ACCT)

    done = svc.cli("reconcile", "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["dry_run"] is True and report["status"] == "succeeded", report
    drift = {(d["object"], d["field"]) for d in report["drift"]}
    assert (cus["id"], "name") in drift, drift
    assert (sub["id"], "pause_collection") in drift, drift
    assert (refund["id"], "exists") in drift, drift
    assert not any(d["fixed"] for d in report["drift"])
    assert svc.profile(cus["id"], ACCT) == before  # a dry run changes nothing

    done = svc.cli("reconcile", "--account", ACCT, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "succeeded" and report["dry_run"] is False
    assert report["fixed"] >= 3 and all(d["fixed"] for d in report["drift"]), report["drift"]
    profile = svc.profile(cus["id"], ACCT)
    assert profile["name"] == "Margaret Hamilton"
    check_subscription(fake, ACCT, profile["subscriptions"][0])
    payment = {p["stripe_charge_id"]: p for p in profile["payments"]}[charge["id"]]
    assert payment_view(payment) == expected_payment(fake, ACCT, charge["id"])
    assert any(a["origin"] == "reconciliation" for a in profile["activity"])
    assert sorted(e["access"] for e in profile["enrollments"]) == ["active", "active"]

    # Nothing left to fix; the HTTP route gives the same kind of report.
    status, body = svc.admin("POST", "/reconciliations", {"account": ACCT, "dry_run": True})
    assert status == 202, body
    deadline = time.time() + 20
    while True:
        status, run = svc.admin("GET", f"/reconciliations/{body['id']}")
        assert status == 200
        if run["status"] in ("succeeded", "failed") or time.time() > deadline:
            break
        time.sleep(0.2)
    assert run["status"] == "succeeded" and run["drift"] == [], run
    assert run["scope"] == {"account": ACCT, "customer": None, "since": None}

    one_line_error(svc.cli("reconcile", "--account", "nope"))
    one_line_error(svc.cli("reconcile", "--since", "soon"))
    one_line_error(svc.cli("reconcile", "--dry-run", env={"STRIPE_API_BASE": "http://127.0.0.1:1"}))
