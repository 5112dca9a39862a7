"""Every real event fixture goes through the pipeline without an unexpected failure."""
import json

import pytest
import responses

from tests.conftest import FIXTURES, STRIPE_API_BASE

EVENT_FILES = sorted(p.name for p in (FIXTURES / "events").glob("*.json"))


@pytest.mark.parametrize("name", EVENT_FILES)
def test_fixture_event_is_applied_or_ignored(name, deliver, run_worker, admin):
    event = json.loads((FIXTURES / "events" / name).read_text())
    with responses.RequestsMock(assert_all_requests_are_fired=False) as api:
        # the Stripe API knows every customer/charge/subscription the fixtures name
        api.add_callback(responses.GET, __import__("re").compile(rf"{STRIPE_API_BASE}/v1/(customers|charges|subscriptions)/.*"),
                         callback=_fake_object)
        api.add_callback(responses.GET, f"{STRIPE_API_BASE}/v1/refunds", callback=lambda r: (200, {}, json.dumps({"object": "list", "data": [], "has_more": False})))
        assert deliver(event).status_code == 200
        run_worker()
    status, body = admin("GET", f"/events/{event['id']}")
    assert body["status"] in ("processed", "ignored"), (name, body["last_error"])


def _fake_object(request):
    kind, object_id = request.path_url.split("?")[0].split("/")[2:4]
    obj = {"id": object_id, "object": kind.rstrip("s")}
    if kind == "customers":
        obj.update({"name": "Fetched Name", "email": "fetched@example.com"})
    if kind == "charges":
        obj.update({"amount": 1000, "currency": "usd", "status": "succeeded", "customer": "cus_fetched",
                    "created": 1600000000, "amount_refunded": 0})
    if kind == "subscriptions":
        obj.update({"status": "active", "customer": "cus_fetched", "metadata": {}})
    return 200, {}, json.dumps(obj)
