"""Every real event fixture goes through the pipeline: the types we handle end `processed`, the others
`ignored`. Which is which is written out here, not read from the event→handler table, so that a handler
that falls out of the table fails this test."""
import json

import pytest

from tests.support import FIXTURES
from workers.event_table import EVENT_HANDLERS

EVENT_FILES = sorted(p.name for p in (FIXTURES / "events").glob("*.json"))
# The fixtures' types that we do not handle; every other type among them must end processed.
IGNORED = {"charge.dispute.created", "invoice.created", "invoice.deleted", "invoice.finalized", "invoice.updated",
           "invoice.voided"}
# What a fetch of each kind the fixtures name answers (the fake Stripe knows them all, and the customer
# cus_fetched its charges and subscriptions name).
FETCHABLE = {"cus_": {"object": "customer", "name": "Fetched Name", "email": "fetched@example.com"},
             "ch_": {"object": "charge", "amount": 1000, "currency": "usd", "status": "succeeded",
                     "customer": "cus_fetched", "created": 1600000000, "amount_refunded": 0},
             "py_": {"object": "charge", "amount": 1000, "currency": "usd", "status": "succeeded",
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


def test_the_table_handles_exactly_the_fixtures_types_not_ignored():
    types = {json.loads((FIXTURES / "events" / name).read_text())["type"] for name in EVENT_FILES}
    assert types > IGNORED
    assert types - IGNORED <= set(EVENT_HANDLERS) and not IGNORED & set(EVENT_HANDLERS)


@pytest.mark.parametrize("name", EVENT_FILES)
def test_fixture_event_is_processed_when_handled_and_ignored_otherwise(name, deliver, run_worker, admin,
                                                                       stripe_api):
    event = json.loads((FIXTURES / "events" / name).read_text())
    for object_id in _named_ids(event["data"]["object"]) | {"cus_fetched"}:
        shape = FETCHABLE[next(p for p in FETCHABLE if object_id.startswith(p))]
        stripe_api.put({"id": object_id, "created": 1600000000, **shape})

    assert deliver(event).status_code == 200
    run_worker()

    status, body = admin("GET", f"/events/{event['id']}")
    assert status == 200, body
    expected = "ignored" if event["type"] in IGNORED else "processed"
    assert body["status"] == expected, (name, event["type"], body["last_error"])
