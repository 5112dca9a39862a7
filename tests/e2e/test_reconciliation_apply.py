"""Applying a dry run: POST /admin/api/reconciliations/{id}/apply → a fixing run (its own job) that re-reads
each object the dry run found drifted, fixes only what still differs, and records what Stripe no longer
has; `teachery-sync reconcile --apply RUN_ID` runs the same synchronously."""
from __future__ import annotations

import dataclasses
import json

import pytest

from teachery_sync.bootstrap import build
from tests.e2e.test_reconciliation import (
    CH,
    CUS,
    NEW_SUB,
    PAUSED,
    RE,
    SUB,
    cli,
    drift_in_stripe,
    in_sync,
    jenny,
)
from tests.support import ADMIN_TOKEN

pytestmark = pytest.mark.e2e


def _dry_run(admin, run_worker, **scope) -> dict:
    status, started = admin("POST", "/reconciliations", {"dry_run": True, **scope})
    assert status == 202, started
    run_worker()
    report = admin("GET", f"/reconciliations/{started['id']}")[1]
    assert report["status"] == "succeeded", report
    return report


def test_applying_a_dry_run_fixes_what_still_differs_and_leaves_what_moved_on(
        admin, run_worker, send, stripe_api, profile):
    in_sync(send, stripe_api)
    drift_in_stripe(stripe_api)
    dry = _dry_run(admin, run_worker)
    assert [(d["object"], d["field"]) for d in dry["drift"]] == [
        (CUS, "name"), (CH, "amount_refunded"), (RE, "status"), (NEW_SUB, "exists"), (SUB, "pause_collection")]
    # The world moves on: the customer is renamed back (no longer differs) and the paused subscription is
    # gone from Stripe.
    stripe_api.put(jenny("Jenny Rosen"))
    del stripe_api.objects[(None, "subscription", SUB)]
    stripe_api.calls.clear()

    status, started = admin("POST", f"/reconciliations/{dry['id']}/apply")
    assert (status, list(started)) == (202, ["id"])
    run_worker()

    report = admin("GET", f"/reconciliations/{started['id']}")[1]
    assert (report["status"], report["dry_run"], report["applies"], report["trigger"]) == (
        "succeeded", False, dry["id"], "admin")
    assert report["scope"] == dry["scope"]
    assert [(d["object"], d["field"], d["local"], d["stripe"], d["fixed"]) for d in report["drift"]] == [
        (CH, "amount_refunded", 1000, 0, True),  # fixing the charge fixed its refund: not drift when re-read
        (NEW_SUB, "exists", False, True, True),
        (SUB, "exists", True, False, False),  # gone from Stripe: recorded, nothing applied
    ]
    assert (report["checked"], report["fixed"]) == (5, 2)
    now = profile(CUS)
    assert now["name"] == "Jenny Rosen"
    assert not [a for a in now["activity"] if a["origin"] == "reconciliation" and a["kind"] == "customer.updated"]
    subs = {s["stripe_subscription_id"]: s for s in now["subscriptions"]}
    assert subs[SUB]["pause_collection"] is None and subs[NEW_SUB]["status"] == "active"
    assert now["payments"][0]["refunds"][0]["status"] == "failed"
    reads = {c["path"] for c in stripe_api.calls if c["method"] == "GET"}
    assert {f"/v1/customers/{CUS}", f"/v1/charges/{CH}", f"/v1/refunds/{RE}", f"/v1/subscriptions/{NEW_SUB}",
            f"/v1/subscriptions/{SUB}"} <= reads
    assert not reads & {"/v1/customers", "/v1/charges", "/v1/refunds", "/v1/subscriptions"}  # no listing
    assert not stripe_api.writes()
    assert admin("GET", f"/reconciliations/{dry['id']}")[1]["drift_count"] == 5  # the dry run's report stays


def test_apply_refuses_what_is_not_a_finished_dry_run_and_a_second_apply(admin, run_worker, send, stripe_api):
    in_sync(send, stripe_api)
    assert admin("POST", "/reconciliations/00000000-0000-0000-0000-000000000000/apply")[0] == 404
    status, fixing = admin("POST", "/reconciliations", {})
    status, body = admin("POST", f"/reconciliations/{fixing['id']}/apply")
    assert status == 409 and "only a succeeded dry run can be applied" in body["error"], body
    status, queued = admin("POST", "/reconciliations", {"dry_run": True})
    status, body = admin("POST", f"/reconciliations/{queued['id']}/apply")
    assert status == 409 and "queued dry run" in body["error"], body
    run_worker()

    status, first = admin("POST", f"/reconciliations/{queued['id']}/apply")
    assert status == 202
    status, again = admin("POST", f"/reconciliations/{queued['id']}/apply")
    assert status == 409 and again["id"] == first["id"] and "already queued or running" in again["error"], again
    run_worker()
    assert admin("POST", f"/reconciliations/{queued['id']}/apply")[0] == 202  # the first one finished


def test_apply_answers_503_when_redis_refuses(app, admin, run_worker, send, stripe_api, settings):
    from webhooks.app import create_app

    in_sync(send, stripe_api)
    dry = _dry_run(admin, run_worker)
    no_redis = build(dataclasses.replace(settings, redis_url="redis://127.0.0.1:9/0"), web=True).open()
    try:
        response = create_app(services=no_redis).test_client().post(
            f"/admin/api/reconciliations/{dry['id']}/apply", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    finally:
        no_redis.close()
    assert response.status_code == 503 and "redis" in response.get_json()["error"]


def test_the_command_applies_a_dry_run(admin, run_worker, send, stripe_api, profile):
    in_sync(send, stripe_api)
    stripe_api.put(jenny("Jenny Renamed"), dict(stripe_api.get(None, "subscription", SUB), pause_collection=PAUSED))
    dry = _dry_run(admin, run_worker)

    done = cli("--apply", dry["id"], "--json")

    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert (report["applies"], report["trigger"], report["fixed"], report["drift_count"]) == (dry["id"], "cli", 2, 2)
    assert profile(CUS)["name"] == "Jenny Renamed"
    table = cli("--apply", dry["id"])
    assert table.exit_code == 0 and "(applying" in table.stdout, table.output
    refused = cli("--apply", dry["id"], "--dry-run")
    assert refused.exit_code != 0 and "--apply takes the dry run's scope" in refused.output
    assert cli("--apply", "00000000-0000-0000-0000-000000000000").exit_code != 0
