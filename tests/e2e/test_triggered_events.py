"""What `teachery-sync trigger` sends, through the receiver and the worker."""
from __future__ import annotations

import json

import pytest

from tests.support import WEBHOOK_SECRET, sign, unsettled
from tests.trigger_history import HISTORY, history
from trigger import build_events
from trigger import samples as sample_objects
from trigger.scenarios import TriggerOptions, TriggerState


def post_signed(client, event: dict, secret: str = WEBHOOK_SECRET):
    body = json.dumps(event, indent=2).encode()
    return client.post("/webhooks/stripe", data=body, headers={
        "Stripe-Signature": sign(body, secret), "Content-Type": "application/json"})


@pytest.mark.parametrize("api_version", sample_objects.API_VERSIONS)
def test_every_event_is_accepted_by_the_receiver(client, api_version):
    sent = 0
    for event_type, events in history(api_version, account="acct_1TriggerTest"):
        assert event_type in [e["type"] for e in events]
        for event in events:
            response = post_signed(client, event)
            assert response.status_code == 200, (event["type"], response.get_json())
            assert response.get_json() == {"received": True}
            sent += 1
    assert sent > len(HISTORY) * 2


def test_a_wrong_secret_is_refused_and_nothing_stored(client, admin):
    [event, *_] = build_events("checkout.session.completed", TriggerOptions(), TriggerState(None))
    assert post_signed(client, event, secret="whsec_not_the_receivers").status_code == 400
    assert admin("GET", "/events")[1] == {"events": []}


@pytest.mark.parametrize("api_version", sample_objects.API_VERSIONS)
def test_the_worker_applies_every_triggered_event(client, admin, run_worker, api_version):
    """Nothing a trigger sends needs the Stripe API (dev has no key): every event is applied at once."""
    for _, events in history(api_version):
        for event in events:
            assert post_signed(client, event).status_code == 200
    run_worker()
    status, body = admin("GET", "/events?limit=1000")
    assert status == 200
    assert body["events"] and unsettled(body["events"]) == []
