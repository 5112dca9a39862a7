"""GET /metrics: the counters and histograms the processes keep (workers/telemetry.py), through the real
path: a signed POST, the worker, the admin API, a reconciliation run; counts add up across the session's
tests, so each test compares /metrics before and after."""
from __future__ import annotations

import json
import re

from domain import reconciliations
from domain.reconciliations import Scope
from tests.stripe_events import T0, customer, event
from tests.support import ADMIN_TOKEN
from workers import reconciliation

SAMPLE = re.compile(r"^(teachery_\S+?)(\{.*\})? (\S+)$", re.M)


def scrape(client) -> dict[str, float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {name + (labels or ""): float(value)
            for name, labels, value in SAMPLE.findall(response.get_data(as_text=True))}


def delta(before: dict, after: dict) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}


def test_webhooks_received_and_refused_by_reason(client, deliver, app):
    before = scrape(client)
    person = event("customer.created", customer("cus_Counted", email="c@example.com", name="C"), created=T0)
    assert deliver(person).status_code == 200
    assert deliver(person).get_json() == {"received": True, "duplicate": True}
    assert deliver(person, secret="whsec_wrong").status_code == 400
    assert deliver(b'{"not": "an event"}').status_code == 400
    nul = json.dumps({**person, "id": "evt_Nul1", "data": {"object": {"name": "a\u0000b"}}}).encode()
    assert deliver(nul).status_code == 400
    too_big = b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    assert client.post("/webhooks/stripe", data=too_big, headers={"Stripe-Signature": "t=1,v1=00"}).status_code == 413

    after = scrape(client)
    assert {k: v for k, v in delta(before, after).items() if k.startswith("teachery_webhooks")} == {
        'teachery_webhooks_received_total{outcome="new"}': 1.0,
        'teachery_webhooks_received_total{outcome="duplicate"}': 1.0,
        'teachery_webhooks_refused_total{reason="bad_signature"}': 1.0,
        'teachery_webhooks_refused_total{reason="not_an_event"}': 1.0,
        'teachery_webhooks_refused_total{reason="unstorable"}': 1.0,
        'teachery_webhooks_refused_total{reason="too_large"}': 1.0,
    }
    assert after['teachery_events{status="received"}'] == 1.0  # the scrape-time gauges stay beside them


def test_events_applied_per_type_and_outcome_and_time_to_applied(client, send, admin):
    before = scrape(client)
    send(event("customer.created", customer("cus_Applied", email="a@example.com", name="A"), created=T0),
         event("radar.early_fraud_warning.created", {"id": "issfr_1", "object": "radar.early_fraud_warning"},
               created=T0),
         event("charge.refunded", {"id": "ch_NeverSeen", "object": "charge", "customer": "cus_Nobody",
                                   "amount": 100, "amount_refunded": 100, "currency": "usd"}, created=T0))
    after = scrape(client)
    changed = delta(before, after)
    # (labels in the exposition are sorted by name)
    assert changed['teachery_events_applied_total{outcome="processed",type="customer.created"}'] == 1.0
    assert changed['teachery_events_applied_total{outcome="ignored",type="other"}'] == 1.0  # no handler
    assert {k: v for k, v in changed.items() if 'type="charge.refunded"' in k} == {
        'teachery_events_applied_total{outcome="waiting",type="charge.refunded"}': 1.0}  # its charge is unseen
    # the histogram: the two applied events, within seconds of their receipt; the waiting one not yet
    assert changed['teachery_event_receipt_to_applied_seconds_count{outcome="processed"}'] == 1.0
    assert changed['teachery_event_receipt_to_applied_seconds_count{outcome="ignored"}'] == 1.0
    assert 0 <= changed['teachery_event_receipt_to_applied_seconds_sum{outcome="processed"}'] < 30
    assert changed['teachery_event_receipt_to_applied_seconds_bucket{le="30.0",outcome="processed"}'] == 1.0
    [replayed] = [e for e in admin("GET", "/events?limit=10")[1]["events"] if e["type"] == "customer.created"]
    assert admin("POST", f"/events/{replayed['id']}/replay")[0] in (200, 202)


def test_an_admin_action_unavailable_and_rejected_and_stripe_errors_per_account(client, send, admin, profile):
    """Without the fake Stripe (nothing listens at the API's address) an edit is `unavailable`, and the
    call an error of the platform's account; a revoke of a course the customer never had is rejected."""
    send(event("customer.created", customer("cus_Acted", email="act@example.com", name="Act"), created=T0))
    cid = profile("cus_Acted")["id"]
    before = scrape(client)
    status, _ = admin("PATCH", f"/customers/{cid}", {"name": "New Name"})
    assert status == 503
    changed = delta(before, scrape(client))
    assert changed['teachery_admin_actions_total{kind="customer.edit",outcome="unavailable"}'] == 1.0
    assert changed['teachery_stripe_errors_total{account="platform",kind="unavailable"}'] == 1.0

    before = scrape(client)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Idempotency-Key": "counted-revoke-1"}
    first = client.post(f"/admin/api/customers/{cid}/courses/course_x/revoke", headers=headers)
    again = client.post(f"/admin/api/customers/{cid}/courses/course_x/revoke", headers=headers)
    assert (first.status_code, again.status_code) == (404, 404)
    assert delta(before, scrape(client)) == {
        'teachery_admin_actions_total{kind="course.revoke",outcome="rejected"}': 2.0}


def test_an_admin_action_succeeded_then_replayed_by_its_key(client, send, admin, profile, stripe_api):
    stripe_api.put(customer("cus_Edited", email="e@example.com", name="Ed", created=T0))
    send(event("customer.created", customer("cus_Edited", email="e@example.com", name="Ed", created=T0),
               created=T0))
    cid = profile("cus_Edited")["id"]
    before = scrape(client)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Idempotency-Key": "counted-edit-1"}
    first = client.patch(f"/admin/api/customers/{cid}", json={"name": "Edd"}, headers=headers)
    again = client.patch(f"/admin/api/customers/{cid}", json={"name": "Edd"}, headers=headers)
    assert (first.status_code, again.status_code) == (200, 200), first.get_json()
    changed = delta(before, scrape(client))
    assert changed['teachery_admin_actions_total{kind="customer.edit",outcome="succeeded"}'] == 1.0
    assert changed['teachery_admin_actions_total{kind="customer.edit",outcome="replayed"}'] == 1.0
    assert not any(k.startswith("teachery_stripe_errors") for k in changed)


def _counted_run(client, services, *, dry_run: bool) -> dict:
    """A reconciliation run of every object, to its success; the counters it changed."""
    before = scrape(client)
    with services.pool.connection() as conn:
        run = reconciliations.create(conn, Scope(), dry_run)
    assert reconciliation.run(services, run) == "succeeded"
    return delta(before, scrape(client))


def test_reconciliation_drift_found_and_fixed(client, services, stripe_api, send):
    send(event("customer.created", customer("cus_Drifty", email="d@example.com", name="Before", created=T0),
               created=T0))
    stripe_api.put(customer("cus_Drifty", email="d@example.com", name="Renamed in Stripe", created=T0))
    changed = _counted_run(client, services, dry_run=True)
    assert changed['teachery_reconciliation_drift_items_found_total{kind="customer"}'] == 1.0
    assert 'teachery_reconciliation_drift_items_fixed_total{kind="customer"}' not in changed  # a dry run fixes nothing

    changed = _counted_run(client, services, dry_run=False)
    assert changed['teachery_reconciliation_drift_items_found_total{kind="customer"}'] == 1.0
    assert changed['teachery_reconciliation_drift_items_fixed_total{kind="customer"}'] == 1.0

