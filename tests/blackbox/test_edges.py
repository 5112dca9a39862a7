"""Edges of the event pipeline and of configuration, black-box: basil payments merged by their charge,
failed charges, account isolation, same-second ties, deleted customers, Stripe down (waiting, never
dropped), secret rotation, no admin token, database down."""
from __future__ import annotations

import json
import subprocess
import time

import requests

from teachery_sync.embedded import free_port
from tests.blackbox.helpers import buyer
from tests.blackbox.service import BIN, DATABASE_URL, ROOT, sign
from tests.fake_stripe import BASIL, StripeError
from tests.worker_processes import kill_group

A, B = "acct_1BBEdgeA", "acct_1BBEdgeB"


def envelope(fake, type_, obj, account, event_id):
    return {"id": event_id, "object": "event", "api_version": fake.api_version, "created": fake.now,
            "type": type_, "account": account, "data": {"object": obj}, "livemode": False,
            "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None}}


def test_basil_invoice_payment_is_taken_over_by_its_charge(svc):
    fake = svc.fake
    fake.reset(BASIL)
    cus = fake.create_customer(A, "Basil", "basil@example.com")
    sub, charge = fake.subscribe(A, cus["id"], 1500, "course_basil")
    events = fake.take_events()
    svc.deliver([e for e in events if e["type"] == "invoice.paid"])
    svc.wait_settled()
    [early] = svc.profile(cus["id"], A)["payments"]
    assert (early["stripe_invoice_id"], early["course_id"], early["amount"]) == (
        sub["latest_invoice"], "course_basil", 1500)
    svc.deliver(events)
    svc.wait_settled()
    profile = svc.profile(cus["id"], A)
    assert [(p["stripe_charge_id"], p["stripe_invoice_id"], p["stripe_subscription_id"], p["course_id"])
            for p in profile["payments"]] == [(charge["id"], sub["latest_invoice"], sub["id"], "course_basil")]
    assert [e["course_id"] for e in profile["enrollments"]] == ["course_basil"]


def test_failed_charge_and_purchase_without_course(svc):
    fake = svc.fake
    cus = fake.create_customer(A, "Failer", "fail@example.com")
    fake.tick()
    failed = fake._charge(cus["id"], 700, "pi_BBfailed", email=cus["email"], name=cus["name"])
    failed.update(status="failed", paid=False, captured=False, metadata={"course_id": "course_f"},
                  failure_code="card_declined", failure_message="Your card was declined.")
    fake.put(failed, account=A)
    fake._event("charge.failed", failed, A)
    free = fake.buy_course(A, cus["id"], 300, None)
    svc.settle()
    profile = svc.profile(cus["id"], A)
    payments = {p["stripe_charge_id"]: p for p in profile["payments"]}
    assert payments[failed["id"]]["status"] == "failed"
    assert payments[free["id"]]["course_id"] is None and payments[free["id"]]["status"] == "succeeded"
    assert profile["enrollments"] == []


def test_event_of_another_account_never_touches_this_one(svc):
    fake = svc.fake
    cus = fake.create_customer(A, "Owner", "owner@example.com")
    charge = fake.buy_course(A, cus["id"], 5000, "course_a")
    svc.settle()
    before = svc.profile(cus["id"], A)
    fake.tick()
    refund = {"id": "re_BBforeign", "object": "refund", "amount": 5000, "charge": charge["id"], "currency": "usd",
              "status": "succeeded", "created": fake.now, "metadata": {}, "reason": None,
              "payment_intent": charge["payment_intent"]}
    event = envelope(fake, "refund.created", refund, B, "evt_BBforeign")
    assert svc.post_event(event).status_code == 200
    svc.wait_settled(allow_waiting=True)
    [row] = [e for e in svc.events() if e["id"] == "evt_BBforeign"]
    assert row["status"] == "waiting" and row["account"] == B, row  # B's charge is unknown: fetched with B, waits
    asked = [r for r in fake.requests if r["path"] == f"/v1/charges/{charge['id']}"]
    assert asked and {r["account"] for r in asked} == {B}
    assert svc.profile(cus["id"], A)["payments"] == before["payments"]


def test_same_second_pause_and_resume_settle_from_the_api(svc):
    fake = svc.fake
    cus, _, sub = buyer(svc, A, "Tie", "tie@example.com", subscribes_to="course_tie", monthly=1000)
    fake.update_subscription(A, sub["id"], {"pause_collection": {"behavior": "void", "resumes_at": None}})
    fake.now -= 60  # the resume in the very same second
    fake.update_subscription(A, sub["id"], {"pause_collection": None})
    pause, resume = fake.take_events()
    assert pause["created"] == resume["created"]
    svc.deliver([resume, pause])
    svc.wait_settled()
    assert svc.profile(cus["id"], A)["subscriptions"][0]["pause_collection"] is None


def test_customer_deleted_in_stripe_stays_with_access(svc):
    fake = svc.fake
    cus = fake.create_customer(A, "Gone", "gone@example.com")
    fake.buy_course(A, cus["id"], 1000, "course_g")
    fake.tick()
    fake._event("customer.deleted", {"id": cus["id"], "object": "customer", "deleted": True}, A)
    events = fake.take_events()
    svc.deliver(events[::-1])
    svc.wait_settled()
    profile = svc.profile(cus["id"], A)
    assert profile["deleted_in_stripe"] is True
    assert (profile["name"], profile["email"]) == ("Gone", "gone@example.com")
    assert [(e["course_id"], e["access"]) for e in profile["enrollments"]] == [("course_g", "active")]
    status, body = svc.admin("PATCH", f"/customers/{profile['id']}", {"name": "Back"})
    assert status == 409, body
    assert not fake.writes("/v1/customers")


def test_unknown_customer_waits_while_stripe_is_down_then_is_fetched(svc):
    fake = svc.fake
    cus = fake.create_customer(A, "Fetched Later", "later@example.com")
    sub, _ = fake.subscribe(A, cus["id"], 900, "course_fetch")
    [update] = [e for e in fake.take_events() if e["type"] == "customer.subscription.updated"]
    fake.fail_next.extend([("GET", "/v1/customers", StripeError(500, "api_error", "down"))] * 6)
    assert svc.post_event(update).status_code == 200
    deadline = time.time() + 10
    while time.time() < deadline:
        [row] = svc.events()
        if row["status"] == "waiting":
            break
        time.sleep(0.1)
    assert row["status"] == "waiting" and "cus_" in (row["last_error"] or ""), row
    fake.fail_next.clear()
    svc.wait_settled(timeout=40)
    profile = svc.profile(cus["id"], A)
    assert (profile["name"], profile["email"]) == ("Fetched Later", "later@example.com")
    assert profile["subscriptions"][0]["stripe_subscription_id"] == sub["id"]
    assert {r["account"] for r in fake.requests if r["path"] == f"/v1/customers/{cus['id']}"} == {A}


def _web(env_changes):
    port = free_port()
    proc = subprocess.Popen([str(BIN), "web", "--port", str(port), "--workers", "1"], cwd=ROOT,
                            env=env_changes, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            requests.get(url + "/healthz", timeout=1)
            return proc, url
        except requests.ConnectionError:
            assert proc.poll() is None, "web exited"
            time.sleep(0.1)
    kill_group(proc)
    raise AssertionError("web did not start")


def test_secret_rotation_no_admin_token_and_database_down(svc):
    body = json.dumps({"id": "evt_BBrotation", "object": "event", "type": "customer.updated", "created": 1767225600,
                       "data": {"object": {"id": "cus_BBrot", "object": "customer", "name": "R",
                                           "email": "r@example.com"}}}).encode()
    proc, url = _web({**svc.env, "STRIPE_WEBHOOK_SECRET": "whsec_old, whsec_new", "ADMIN_TOKEN": ""})
    try:
        post = lambda sig: requests.post(url + "/webhooks/stripe", data=body, timeout=15,  # noqa: E731
                                         headers={"Stripe-Signature": sig})
        assert post(sign(body, "whsec_other")).status_code == 400
        assert post(sign(body, "whsec_old")).json() == {"received": True}
        assert post(sign(body, "whsec_new")).json() == {"received": True, "duplicate": True}
        ts = int(time.time())
        two = sign(body, "whsec_other", ts) + "," + sign(body, "whsec_new", ts).split(",")[1]
        assert post(two).status_code == 200  # several v1 signatures: any one may match
        r = requests.get(url + "/admin/api/events", headers={"Authorization": "Bearer anything"}, timeout=5)
        assert r.status_code == 503 and "disabled" in r.json()["error"]
    finally:
        kill_group(proc)
    proc, url = _web({**svc.env, "DATABASE_URL": DATABASE_URL.replace(":5432", ":1")})
    try:
        r = requests.get(url + "/readyz", timeout=15)
        assert r.status_code == 503 and "postgres" in r.text.lower(), r.text
        other = body.replace(b"evt_BBrotation", b"evt_BBdbdown")
        r = requests.post(url + "/webhooks/stripe", data=other, headers={"Stripe-Signature": sign(other)}, timeout=20)
        assert r.status_code == 503, r.text
    finally:
        kill_group(proc)
    assert [e["id"] for e in svc.events()] == ["evt_BBrotation"]
