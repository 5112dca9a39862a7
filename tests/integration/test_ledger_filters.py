"""GET /admin/api/events filters (since, account, object) and the event's attempts log."""
from __future__ import annotations

import pytest

from tests.stripe_events import T0, charge, customer, event

ACCT = "acct_1LedgerFilters"


@pytest.fixture
def ledger_events(send):
    """Events about two customers, on the platform and on a connected account."""
    made = {
        "ada": event("customer.created", customer("cus_LF_Ada", email="ada@e.x", name="Ada"), created=T0),
        "ada_charge": event("charge.succeeded", charge("ch_LF_Ada", customer="cus_LF_Ada", amount=900),
                            created=T0 + 1),
        "bob": event("customer.created", customer("cus_LF_Bob", email="bob@e.x", name="Bob"), created=T0 + 2),
        "bob_acct": event("customer.created", customer("cus_LF_Bob", email="bob@e.x", name="Bob"), created=T0 + 3,
                          account=ACCT),
    }
    send(*made.values())
    return {name: e["id"] for name, e in made.items()}


def _ids(admin, query: str) -> set[str]:
    status, body = admin("GET", f"/events?{query}")
    assert status == 200, body
    return {e["id"] for e in body["events"]}


def test_events_about_one_object_and_what_it_names(admin, ledger_events):
    assert _ids(admin, "object=cus_LF_Ada") == {ledger_events["ada"], ledger_events["ada_charge"]}
    assert _ids(admin, "object=ch_LF_Ada") == {ledger_events["ada_charge"]}
    assert _ids(admin, "object=cus_LF_Bob") == {ledger_events["bob"], ledger_events["bob_acct"]}
    assert _ids(admin, "object=cus_LF_Bob&account=" + ACCT) == {ledger_events["bob_acct"]}
    assert _ids(admin, "object=cus_LF_Bob&account=platform") == {ledger_events["bob"]}


def test_events_since(admin, ledger_events):
    assert _ids(admin, "since=2000-01-01T00:00:00Z") == set(ledger_events.values())
    assert _ids(admin, "since=2999-01-01T00:00:00Z") == set()


@pytest.mark.parametrize("query", ["since=yesterday", "account=cus_123", "account=acct_"])
def test_bad_filters_are_400(admin, query):
    status, body = admin("GET", f"/events?{query}")
    assert status == 400 and isinstance(body["error"], str)


def test_one_event_shows_its_attempts(admin, ledger_events):
    status, body = admin("GET", f"/events/{ledger_events['ada']}")
    assert status == 200
    [attempt] = body["attempts_log"]
    assert (attempt["kind"], attempt["status"], attempt["error"]) == ("automatic", "processed", None)
    assert attempt["at"].endswith("Z") and body["source"] == "webhook" and body["next_attempt_at"] is None
