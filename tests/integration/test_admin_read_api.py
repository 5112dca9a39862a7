"""The read half of /admin/api/* (README, "Admin API"): auth, customers, profiles, the event ledger.

Records are made the real way (signed events, worker); objects from tests/stripe_events.py, which
builds them from the supabase stripe-sync-engine fixtures.
"""
from __future__ import annotations

import dataclasses
import re

import pytest

from tests.stripe_events import DAY, T0, charge, customer, event, refund, subscription
from tests.support import ADMIN_TOKEN

PEOPLE = [
    ("cus_AdminAda", "Ada Lovelace", "ada@example.com"),
    ("cus_AdminGrace", "Grace Hopper", "grace_h@example.org"),
    ("cus_AdminAlan", "Alan 100% Turing", "alan@example.com"),
    ("cus_AdminEdsger", "Edsger Dijkstra", "EWD@Example.NET"),
]

PROFILE_KEYS = {"id", "account", "stripe_customer_id", "name", "email", "deleted_in_stripe", "enrollments",
                "payments", "subscriptions", "activity"}
ENROLLMENT_KEYS = {"course_id", "access", "granted_at", "revoked_at"}
PAYMENT_KEYS = {"stripe_charge_id", "stripe_payment_intent_id", "stripe_invoice_id", "stripe_subscription_id",
                "course_id", "amount", "currency", "amount_refunded", "status", "created", "refunds"}
REFUND_KEYS = {"stripe_refund_id", "amount", "status", "reason", "origin"}
SUBSCRIPTION_KEYS = {"stripe_subscription_id", "course_id", "status", "pause_collection", "cancel_at_period_end",
                     "cancel_at", "canceled_at", "ended_at", "current_period_end"}
ACTIVITY_KEYS = {"at", "kind", "message", "origin", "stripe_event_id", "actor"}  # actor: an addition (README, Changelog)
EVENT_LIST_KEYS = {"id", "type", "account", "status", "attempts", "received_at", "last_error"}
ISO_UTC = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)$"


@pytest.fixture
def people(send, stripe_api):
    """Four customers, each with a charge for a course."""
    for n, (cus, name, email) in enumerate(PEOPLE):
        stripe_api.put(customer(cus, email=email, name=name))
        send(event("charge.succeeded", charge(f"ch_{cus[4:]}", customer=cus, amount=1000 + n, created=T0 + n,
                                              metadata={"course_id": "course_admin"}), created=T0 + n), work=False)


@pytest.fixture
def people_applied(people, run_worker):
    run_worker()


def _client_with(services, **settings_changes):
    from webhooks.app import create_app

    changed = dataclasses.replace(services, settings=dataclasses.replace(services.settings, **settings_changes))
    app = create_app(services=changed)
    app.config["TESTING"] = True
    return app.test_client()


def _search(admin, q):
    status, body = admin("GET", f"/customers?q={q}")
    assert status == 200, body
    return sorted(c["stripe_customer_id"] for c in body["customers"])


# --- authentication ----------------------------------------------------------------------------

PROTECTED = [("GET", "/admin/api/customers?q=a"), ("GET", "/admin/api/customers/whatever"),
             ("GET", "/admin/api/stripe-customers/cus_AdminAda"), ("DELETE", "/admin/api/customers/whatever"),
             ("GET", "/admin/api/events"), ("GET", "/admin/api/events/evt_nope"),
             ("POST", "/admin/api/events/evt_nope/replay")]
UNKNOWN = [("GET", "/admin/api/no/such/path"), ("POST", "/admin/api/no/such/path"), ("GET", "/admin/api/")]
WRONG = [None, "", "Bearer", "Bearer ", "Bearer wrong-token", f"Basic {ADMIN_TOKEN}", f"Bearer {ADMIN_TOKEN}x",
         f"Bearer {ADMIN_TOKEN[:-1]}", ADMIN_TOKEN]


def _status_without_the_token(client, method, path, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.open(path, method=method, headers=headers)
    if response.status_code == 401:
        assert isinstance(response.get_json()["error"], str)
    return response.status_code


@pytest.mark.parametrize("method,path", PROTECTED)
def test_missing_token_is_401_before_anything(client, method, path):
    assert _status_without_the_token(client, method, path, None) == 401


@pytest.mark.parametrize("authorization", WRONG)
def test_wrong_token_is_401(client, authorization):
    assert _status_without_the_token(client, "GET", "/admin/api/events", authorization) == 401


def test_unknown_paths_under_admin_api_are_401_without_the_token(client):
    statuses = {(method, path, auth): _status_without_the_token(client, method, path, auth)
                for method, path in UNKNOWN for auth in (None, "Bearer wrong-token")}

    assert set(statuses.values()) == {401}, statuses


def test_right_token_on_an_unknown_path_is_404_json(admin):
    status, body = admin("GET", "/no/such/path")

    assert status == 404
    assert isinstance(body["error"], str)


@pytest.mark.parametrize("method,path", PROTECTED[:4])
def test_no_admin_token_configured_disables_the_admin_api(services, method, path):
    client = _client_with(services, admin_token=None)

    for headers in ({}, {"Authorization": f"Bearer {ADMIN_TOKEN}"}, {"Authorization": "Bearer "}):
        response = client.open(path, method=method, headers=headers)
        assert response.status_code == 503
        assert "admin API disabled" in response.get_json()["error"]


# --- customers -------------------------------------------------------------------------------

def test_search_by_name_or_email_case_insensitive_substring(admin, people_applied):
    assert _search(admin, "ADA") == ["cus_AdminAda"]
    assert _search(admin, "lovelace") == ["cus_AdminAda"]
    assert _search(admin, "ewd@example.net") == ["cus_AdminEdsger"]
    assert _search(admin, "example.COM") == ["cus_AdminAda", "cus_AdminAlan"]
    assert _search(admin, "e") == sorted(c for c, _, _ in PEOPLE)
    assert _search(admin, "nobody-like-this") == []


def test_search_treats_percent_and_underscore_literally(admin, people_applied):
    assert _search(admin, "%25") == ["cus_AdminAlan"]  # "%" (URL-encoded): only the name with a %
    assert _search(admin, "_") == ["cus_AdminGrace"]  # only the email with an underscore
    assert _search(admin, "grace_h") == ["cus_AdminGrace"]
    assert _search(admin, "grace%25") == []
    assert _search(admin, "100%25 T") == ["cus_AdminAlan"]
    assert _search(admin, "\\") == []


def test_search_result_shape(admin, people_applied):
    status, body = admin("GET", "/customers?q=ada")

    assert status == 200
    assert list(body) == ["customers"]
    [ada] = body["customers"]
    assert set(ada) == {"id", "account", "stripe_customer_id", "name", "email"}
    assert (ada["account"], ada["stripe_customer_id"], ada["name"], ada["email"]) == \
        (None, "cus_AdminAda", "Ada Lovelace", "ada@example.com")


def test_profile_has_exactly_the_contract_shape(send, admin, profile, stripe_api):
    cus = "cus_AdminShape"
    stripe_api.put(customer(cus, email="shape@example.com", name="Sha Pe"))
    re1 = refund("re_AdminShape", charge="ch_AdminShape", amount=100, created=T0 + DAY)
    send(event("charge.succeeded", charge("ch_AdminShape", customer=cus, amount=4900, created=T0,
                                          metadata={"course_id": "course_shape"}), created=T0),
         event("refund.created", re1, created=T0 + DAY),
         event("customer.subscription.created", subscription("sub_AdminShape", customer=cus, created=T0,
                                                             metadata={"course_id": "course_shape"}), created=T0),
         event("customer.subscription.updated",
               subscription("sub_AdminShape", customer=cus, created=T0, metadata={"course_id": "course_shape"},
                            pause_collection={"behavior": "keep_as_draft", "resumes_at": T0 + 9 * DAY}),
               created=T0 + 2 * DAY))
    by_stripe = profile(cus)

    status, found = admin("GET", f"/customers/{by_stripe['id']}")

    assert status == 200
    assert found == by_stripe
    assert set(found) == PROFILE_KEYS
    assert isinstance(found["id"], str) and found["deleted_in_stripe"] is False
    [enrollment] = found["enrollments"]
    assert set(enrollment) == ENROLLMENT_KEYS
    assert enrollment["granted_at"] and enrollment["revoked_at"] is None
    [payment] = found["payments"]
    assert set(payment) == PAYMENT_KEYS
    assert isinstance(payment["amount"], int) and isinstance(payment["amount_refunded"], int)
    [refunded] = payment["refunds"]
    assert set(refunded) == REFUND_KEYS
    [sub] = found["subscriptions"]
    assert set(sub) == SUBSCRIPTION_KEYS
    assert set(sub["pause_collection"]) == {"behavior", "resumes_at"}
    assert found["activity"] and all(set(a) == ACTIVITY_KEYS for a in found["activity"])
    times = [enrollment["granted_at"], payment["created"], sub["current_period_end"],
             sub["pause_collection"]["resumes_at"]] + [a["at"] for a in found["activity"]]
    assert all(re.match(ISO_UTC, t) for t in times), times


@pytest.mark.parametrize("path", ["/customers/00000000-0000-0000-0000-000000000000", "/customers/not-a-uuid",
                                  "/customers/%27%3B%20DROP%20TABLE%20customers%3B--",
                                  "/stripe-customers/cus_AdminNobody",
                                  "/stripe-customers/cus_AdminAda?account=acct_1SomeoneElse",
                                  "/events/evt_AdminNobody"])
def test_unknown_ids_are_404_with_an_error(admin, people_applied, path):
    status, body = admin("GET", path)

    assert status == 404
    assert isinstance(body["error"], str) and body["error"]


def test_stripe_customer_lookup(admin, profile, people_applied):
    status, ada = admin("GET", "/stripe-customers/cus_AdminAda")

    assert status == 200
    assert (ada["stripe_customer_id"], ada["account"], ada["name"]) == ("cus_AdminAda", None, "Ada Lovelace")
    assert admin("GET", f"/customers/{ada['id']}") == (200, ada)


def test_delete_customer_is_405_and_changes_nothing(admin, profile, people_applied):
    before = profile("cus_AdminAda")

    status, body = admin("DELETE", f"/customers/{before['id']}")

    assert status == 405
    assert isinstance(body["error"], str)
    assert profile("cus_AdminAda") == before


# --- the event ledger ----------------------------------------------------------------------------

def test_events_are_listed_newest_first(admin, people):
    status, body = admin("GET", "/events")

    assert status == 200
    assert list(body) == ["events"]
    assert [e["type"] for e in body["events"]] == ["charge.succeeded"] * len(PEOPLE)
    customers_in_order = [admin("GET", f"/events/{e['id']}")[1]["payload"]["data"]["object"]["customer"]
                          for e in body["events"]]
    assert customers_in_order == [cus for cus, _, _ in reversed(PEOPLE)]
    for listed in body["events"]:
        assert set(listed) == EVENT_LIST_KEYS
        assert listed["account"] is None and listed["status"] == "received" and listed["attempts"] == 0


def test_events_filter_by_status_and_type(send, admin, people_applied):
    send(event("charge.dispute.created", {"id": "dp_AdminIgnored", "object": "dispute", "amount": 100},
               created=T0 + DAY))

    _, ignored = admin("GET", "/events?status=ignored")
    _, processed = admin("GET", "/events?status=processed")
    _, disputes = admin("GET", "/events?type=charge.dispute.created")
    _, both = admin("GET", "/events?type=charge.succeeded&status=ignored")

    assert [e["type"] for e in ignored["events"]] == ["charge.dispute.created"]
    assert [e["type"] for e in processed["events"]] == ["charge.succeeded"] * len(PEOPLE)
    assert [e["status"] for e in disputes["events"]] == ["ignored"]
    assert both["events"] == []


def test_events_limit(deliver, admin):
    for n in range(103):
        assert deliver(event("charge.dispute.created", {"id": f"dp_AdminLimit{n}", "object": "dispute"},
                             created=T0 + n)).status_code == 200

    assert len(admin("GET", "/events")[1]["events"]) == 100
    assert len(admin("GET", "/events?limit=2")[1]["events"]) == 2
    assert len(admin("GET", "/events?limit=1000")[1]["events"]) == 103


@pytest.mark.parametrize("limit", ["0", "-1", "1001", "abc", "1.5", "1e3", "%20"])
def test_bad_limit_is_400(admin, limit):
    status, body = admin("GET", f"/events?limit={limit}")

    assert status == 400
    assert isinstance(body["error"], str)


def test_unknown_status_filter_is_400(admin):
    status, body = admin("GET", "/events?status=bogus")

    assert status == 400
    assert isinstance(body["error"], str)


def test_one_event_shows_status_attempts_payload_and_changes(send, admin, people_applied):
    _, listed = admin("GET", "/events?type=charge.succeeded&limit=1")
    event_id = listed["events"][0]["id"]

    status, body = admin("GET", f"/events/{event_id}")

    assert status == 200
    assert set(body) >= EVENT_LIST_KEYS
    assert (body["id"], body["type"], body["status"], body["last_error"]) == \
        (event_id, "charge.succeeded", "processed", None)
    assert body["attempts"] >= 1
    assert body["payload"]["id"] == event_id and body["payload"]["object"] == "event"
    # "records it changed": the contract names no key; the implementation calls it `changes`
    assert body["changes"], body
    assert any("ch_AdminEdsger" in str(change) or "cus_AdminEdsger" in str(change) for change in body["changes"])


def test_replay_is_202_and_processes_again(admin, run_worker, profile, people_applied):
    before = profile("cus_AdminAda")
    _, listed = admin("GET", "/events?type=charge.succeeded&limit=1000")
    ada_event = next(e["id"] for e in listed["events"]
                     if admin("GET", f"/events/{e['id']}")[1]["payload"]["data"]["object"]["customer"] == "cus_AdminAda")
    attempts = admin("GET", f"/events/{ada_event}")[1]["attempts"]

    status, body = admin("POST", f"/events/{ada_event}/replay")
    run_worker()

    assert status == 202
    replayed = admin("GET", f"/events/{ada_event}")[1]
    assert replayed["status"] == "processed"
    assert replayed["attempts"] > attempts
    assert profile("cus_AdminAda") == before  # applying again changes nothing


def test_replay_of_an_unknown_event_is_404(admin):
    status, body = admin("POST", "/events/evt_AdminNobody/replay")

    assert status == 404
    assert isinstance(body["error"], str)
