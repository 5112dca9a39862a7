"""Every real event fixture goes through the pipeline: a type in the event→handler table ends
`processed`, any other type `ignored`."""
import json

import pytest

from tests.support import FIXTURES, settled_status
from workers.event_table import EVENT_HANDLERS

EVENT_FILES = sorted(p.name for p in (FIXTURES / "events").glob("*.json"))
# What a fetch of each kind the fixtures name answers (the fake Stripe knows them all).
FETCHABLE = {"cus_": {"object": "customer", "name": "Fetched Name", "email": "fetched@example.com"},
             "ch_": {"object": "charge", "amount": 1000, "currency": "usd", "status": "succeeded",
                     "customer": "cus_fetched", "created": 1600000000, "amount_refunded": 0},
             "sub_": {"object": "subscription", "status": "active", "customer": "cus_fetched", "metadata": {},
                      "created": 1600000000}}


def _named_ids(node) -> set[str]:
    """Every customer, charge and subscription id anywhere in a payload."""
    if isinstance(node, dict):
        return set().union(*map(_named_ids, node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*map(_named_ids, node)) if node else set()
    return {node} if isinstance(node, str) and node.startswith(tuple(FETCHABLE)) else set()


def test_the_fixtures_cover_handled_and_unhandled_types():
    types = {json.loads((FIXTURES / "events" / name).read_text())["type"] for name in EVENT_FILES}
    assert types & set(EVENT_HANDLERS) and types - set(EVENT_HANDLERS)


@pytest.mark.parametrize("name", EVENT_FILES)
def test_fixture_event_is_processed_when_handled_and_ignored_otherwise(name, deliver, run_worker, admin,
                                                                       stripe_api):
    event = json.loads((FIXTURES / "events" / name).read_text())
    for object_id in _named_ids(event["data"]["object"]):
        shape = FETCHABLE[next(p for p in FETCHABLE if object_id.startswith(p))]
        stripe_api.put({"id": object_id, "created": 1600000000, **shape})

    assert deliver(event).status_code == 200
    run_worker()

    status, body = admin("GET", f"/events/{event['id']}")
    assert status == 200, body
    assert body["status"] == settled_status(event["type"]), (name, event["type"], body["last_error"])
