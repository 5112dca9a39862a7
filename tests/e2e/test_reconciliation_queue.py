"""Reconciliation runs never starve webhooks: they have their own queue, served by a second worker
process that `teachery-sync worker` supervises; one run per scope at a time (409 with its id), and a
limit on queued runs (429)."""
from __future__ import annotations

import os
import signal
import time

from click.testing import CliRunner

from domain.reconciliations import MAX_QUEUED_RUNS
from teachery_sync.cli import main
from tests.support import NO_STRIPE, TEST_DATABASE_URL, TEST_REDIS_URL, load_fixture
from tests.worker_processes import alive, children_of, kill_group, start_worker, wait_for
from workers.queueing import reconciliation_queue

CUSTOMER_UPDATED = "events/supabase_stripe-sync-engine__packages__fastify-app__src__test__stripe__customer_updated.json"
ENV = {"DATABASE_URL": TEST_DATABASE_URL, "REDIS_URL": TEST_REDIS_URL, "STRIPE_API_KEY": "sk_test_123",
       "STRIPE_API_BASE": NO_STRIPE}


def test_one_run_per_scope_at_a_time(admin, services):
    status, first = admin("POST", "/reconciliations", {"account": "acct_1Scope", "dry_run": True})
    assert status == 202, first
    for body in ({"account": "acct_1Scope", "dry_run": True}, {"account": "acct_1Scope", "dry_run": True,
                                                                "customer": None, "since": None}):
        status, again = admin("POST", "/reconciliations", body)
        assert status == 409 and again["id"] == first["id"] and "already queued or running" in again["error"]
    # Another scope (a fixing run, another customer, another since) is another run.
    for body in ({"account": "acct_1Scope"}, {"account": "acct_1Scope", "dry_run": True, "customer": "cus_1"},
                 {"account": "acct_1Scope", "dry_run": True, "since": "2026-11-01T00:00:00Z"}):
        assert admin("POST", "/reconciliations", body)[0] == 202, body
    assert reconciliation_queue(services.queue).count == 4 and services.queue.count == 0
    # The command line obeys the same rule.
    done = CliRunner().invoke(main, ["reconcile", "--account", "acct_1Scope", "--dry-run"], env=ENV)
    assert done.exit_code == 1 and first["id"] in done.output, done.output


def test_queued_runs_are_limited(admin, services):
    for i in range(MAX_QUEUED_RUNS):
        status, body = admin("POST", "/reconciliations", {"customer": f"cus_Limit{i}", "dry_run": True})
        assert status == 202, body
    status, body = admin("POST", "/reconciliations", {"customer": "cus_LimitOneTooMany", "dry_run": True})
    assert status == 429 and "too many reconciliation runs are queued" in body["error"], body
    with services.pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM reconciliation_runs").fetchone()[0] == MAX_QUEUED_RUNS


def test_a_run_lost_with_redis_ends_failed_and_frees_its_scope(admin, services):
    from workers.worker import sweep_stranded

    status, body = admin("POST", "/reconciliations", {"dry_run": True})
    services.redis.flushdb()  # Redis lost its data
    with services.pool.connection() as conn:
        conn.execute("UPDATE reconciliation_runs SET created_at = now() - interval '2 minutes'")
    sweep_stranded(services)
    report = admin("GET", f"/reconciliations/{body['id']}")[1]
    assert report["status"] == "failed" and "lost" in report["error"]
    assert admin("POST", "/reconciliations", {"dry_run": True})[0] == 202


def test_events_are_applied_while_a_long_run_executes(admin, deliver, tmp_path, stripe_api):
    stripe = stripe_api.hold("/v1/customers")
    worker = start_worker(tmp_path / "worker.log", stripe_url=stripe_api.url)
    try:
        status, run = admin("POST", "/reconciliations", {"dry_run": True})
        assert status == 202
        assert stripe.asked.wait(30), "the run never started"  # the run is now busy reading Stripe
        event = load_fixture(CUSTOMER_UPDATED)
        sent = time.monotonic()
        assert deliver(event).status_code == 200
        assert wait_for(lambda: admin("GET", f"/events/{event['id']}")[1]["status"] == "processed", 10), \
            (tmp_path / "worker.log").read_text()
        assert time.monotonic() - sent < 5
        assert admin("GET", f"/reconciliations/{run['id']}")[1]["status"] == "running"
        stripe.release()
        assert wait_for(lambda: admin("GET", f"/reconciliations/{run['id']}")[1]["status"] == "succeeded", 30)
        assert worker.poll() is None
    finally:
        kill_group(worker)
        stripe.release()


def test_the_second_worker_dies_with_its_parent_even_on_sigkill(tmp_path):
    worker = start_worker(tmp_path / "worker.log")
    try:
        assert wait_for(lambda: children_of(worker.pid), 20), (tmp_path / "worker.log").read_text()
        [second] = children_of(worker.pid)
        os.kill(worker.pid, signal.SIGKILL)  # the parent alone: not its group
        worker.wait(10)
        assert wait_for(lambda: not alive(second), 20), "the reconciliation worker outlived its parent"
    finally:
        kill_group(worker)


def test_burst_drains_both_queues_and_queues_picks(admin, deliver, tmp_path, stripe_api):
    event = load_fixture(CUSTOMER_UPDATED)
    assert deliver(event).status_code == 200
    status, run = admin("POST", "/reconciliations", {"dry_run": True})
    only_events = start_worker(tmp_path / "events.log", "--burst", "--queues", "teachery-events",
                               stripe_url=stripe_api.url)
    assert only_events.wait(60) == 0, (tmp_path / "events.log").read_text()
    assert admin("GET", f"/events/{event['id']}")[1]["status"] == "processed"
    assert admin("GET", f"/reconciliations/{run['id']}")[1]["status"] == "queued"
    both = start_worker(tmp_path / "both.log", "--burst", stripe_url=stripe_api.url)
    assert both.wait(60) == 0, (tmp_path / "both.log").read_text()
    assert admin("GET", f"/reconciliations/{run['id']}")[1]["status"] == "succeeded"


def test_unknown_queues_are_refused(tmp_path):
    done = CliRunner().invoke(main, ["worker", "--queues", "default"], env=ENV)
    assert done.exit_code == 1 and "unknown queue(s): default" in done.output, done.output


def test_concurrent_requests_for_one_scope_start_one_run(app, services):
    from concurrent.futures import ThreadPoolExecutor

    from tests.support import ADMIN_TOKEN

    def post(_):
        response = app.test_client().post("/admin/api/reconciliations", json={"account": "acct_1Flood"},
                                          headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        return response.status_code, response.get_json()["id"]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(40)))
    assert sorted(status for status, _ in answers) == [202] + [409] * 39
    assert len({run_id for _, run_id in answers}) == 1  # every 409 names the one run
    assert reconciliation_queue(services.queue).count == 1


def test_sigterm_stops_both_workers(tmp_path):
    worker = start_worker(tmp_path / "worker.log")
    try:
        assert wait_for(lambda: children_of(worker.pid), 20), (tmp_path / "worker.log").read_text()
        [second] = children_of(worker.pid)
        time.sleep(1)  # both listening
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0, (tmp_path / "worker.log").read_text()
        assert wait_for(lambda: not alive(second), 10)
    finally:
        kill_group(worker)
