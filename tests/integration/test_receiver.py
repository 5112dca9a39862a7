"""POST /webhooks/stripe and the health checks, against the real PostgreSQL and Redis."""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import time

import pytest
from psycopg_pool import ConnectionPool

from teachery_sync.bootstrap import build
from tests.stripe_events import T0, charge, customer, event
from tests.support import ADMIN_TOKEN, WEBHOOK_SECRET, load_fixture, sign

# supabase stripe-sync-engine charge_succeeded.json: a real charge.succeeded envelope (api 2020-03-02)
CHARGE_SUCCEEDED = "events/supabase_stripe-sync-engine__packages__fastify-app__src__test__stripe__charge_succeeded.json"
OLD_SECRET = "whsec_old_secret_being_rotated_out"
NEW_SECRET = "whsec_new_secret_being_rotated_in"


def _signature(body: bytes, secret: str, timestamp: int) -> str:
    """Stripe's v1 scheme on raw bytes (the conftest helper needs UTF-8 text)."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def _post(client, body: bytes, header: str | None):
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Stripe-Signature"] = header
    return client.post("/webhooks/stripe", data=body, headers=headers)


def _stored(admin, event_id: str) -> bool:
    status, _ = admin("GET", f"/events/{event_id}")
    assert status in (200, 404)
    return status == 200


def _ledger_ids(admin) -> list[str]:
    status, body = admin("GET", "/events")
    assert status == 200
    return [e["id"] for e in body["events"]]


@pytest.fixture
def real_event():
    return load_fixture(CHARGE_SUCCEEDED)


def _app_for(services):
    from webhooks.app import create_app

    app = create_app(services=services)
    app.config["TESTING"] = True
    return app


# --- accepted -------------------------------------------------------------------------------

def test_valid_event_is_acknowledged_and_stored(deliver, admin, real_event):
    response = deliver(real_event)

    assert response.status_code == 200
    assert response.get_json() == {"received": True}
    status, stored = admin("GET", f"/events/{real_event['id']}")
    assert status == 200
    assert stored["type"] == "charge.succeeded"
    assert stored["account"] is None
    assert stored["payload"] == real_event
    assert stored["status"] in ("received", "processing", "processed", "waiting")


def test_same_event_id_again_is_a_duplicate_and_applied_once(deliver, run_worker, admin, profile, stripe_api):
    # supabase charge_succeeded.json, with a course so that it also makes an enrollment
    evt = load_fixture(CHARGE_SUCCEEDED)
    evt["data"]["object"]["metadata"] = {"course_id": "course_dup"}
    cus = evt["data"]["object"]["customer"]
    stripe_api.put(customer(cus, email="dup@example.com", name="Dup Licate"))

    first = deliver(evt)
    second = deliver(evt)
    run_worker()
    third = deliver(evt)
    run_worker()

    assert first.status_code == 200 and first.get_json() == {"received": True}
    assert second.status_code == 200 and second.get_json() == {"received": True, "duplicate": True}
    assert third.status_code == 200 and third.get_json() == {"received": True, "duplicate": True}
    assert _ledger_ids(admin) == [evt["id"]]
    found = profile(cus)
    assert found is not None
    assert [p["stripe_charge_id"] for p in found["payments"]] == [evt["data"]["object"]["id"]]
    assert [e["course_id"] for e in found["enrollments"]] == ["course_dup"]
    status, stored = admin("GET", f"/events/{evt['id']}")
    assert stored["status"] == "processed"


def test_unknown_event_type_is_stored_as_ignored(deliver, run_worker, admin):
    # dj-stripe FAKE_EVENT_DISPUTE_CREATED.json: charge.dispute.created is not a type we handle
    evt = load_fixture("events/dj-stripe_dj-stripe__tests____init__.py__FAKE_EVENT_DISPUTE_CREATED.json")

    assert deliver(evt).status_code == 200
    run_worker()

    status, stored = admin("GET", f"/events/{evt['id']}")
    assert status == 200
    assert stored["status"] == "ignored"
    status, listed = admin("GET", "/events?status=ignored")
    assert [e["id"] for e in listed["events"]] == [evt["id"]]


def test_several_v1_signatures_in_one_header(client, admin, real_event):
    body = json.dumps(real_event).encode()
    ts = int(time.time())
    header = (f"t={ts},v1={_signature(body, 'whsec_someone_else', ts)},"
              f"v1={_signature(body, WEBHOOK_SECRET, ts)},v0=deadbeef")

    response = _post(client, body, header)

    assert response.status_code == 200
    assert _stored(admin, real_event["id"])


def test_rotation_accepts_old_and_new_secret_and_nothing_else(services, real_event):
    rotating = dataclasses.replace(services, settings=dataclasses.replace(
        services.settings, webhook_secrets=(OLD_SECRET, NEW_SECRET)))
    client = _app_for(rotating).test_client()
    first, second, third = (dict(real_event, id=f"evt_rotation{n}") for n in range(3))

    by_old = client.post("/webhooks/stripe", data=json.dumps(first),
                         headers={"Stripe-Signature": sign(json.dumps(first).encode(), OLD_SECRET)})
    by_new = client.post("/webhooks/stripe", data=json.dumps(second),
                         headers={"Stripe-Signature": sign(json.dumps(second).encode(), NEW_SECRET)})
    by_stranger = client.post("/webhooks/stripe", data=json.dumps(third),
                              headers={"Stripe-Signature": sign(json.dumps(third).encode(), WEBHOOK_SECRET)})

    assert (by_old.status_code, by_new.status_code, by_stranger.status_code) == (200, 200, 400)
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert client.get("/admin/api/events/evt_rotation0", headers=auth).status_code == 200
    assert client.get("/admin/api/events/evt_rotation1", headers=auth).status_code == 200
    assert client.get("/admin/api/events/evt_rotation2", headers=auth).status_code == 404


def test_comma_separated_secret_setting_rotates():
    from domain.settings import Settings

    settings = Settings.from_env({"STRIPE_WEBHOOK_SECRET": f"{OLD_SECRET}, {NEW_SECRET}"})

    assert settings.webhook_secrets == (OLD_SECRET, NEW_SECRET)


# --- refused: nothing stored ------------------------------------------------------------------

@pytest.mark.parametrize("make_header", [
    pytest.param(lambda body: None, id="missing"),
    pytest.param(lambda body: "", id="empty"),
    pytest.param(lambda body: "garbage", id="garbage"),
    pytest.param(lambda body: f"t={int(time.time())}", id="no-v1"),
    pytest.param(lambda body: f"t=notanumber,v1={_signature(body, WEBHOOK_SECRET, 0)}", id="bad-timestamp"),
    pytest.param(lambda body: f"t={int(time.time())},v1=00ff", id="bad-v1"),
    pytest.param(lambda body: sign(body, "whsec_wrong_secret"), id="wrong-secret"),
    pytest.param(lambda body: sign(body, WEBHOOK_SECRET, int(time.time()) - 301), id="stale-timestamp"),
    pytest.param(lambda body: sign(body + b" ", WEBHOOK_SECRET), id="signed-other-bytes"),
    pytest.param(lambda body: sign(body, WEBHOOK_SECRET).replace("v1=", "v0="), id="only-v0"),
])
def test_bad_signature_is_400_and_nothing_stored(client, admin, real_event, make_header):
    body = json.dumps(real_event).encode()

    response = _post(client, body, make_header(body))

    assert response.status_code == 400
    assert "error" in response.get_json()
    assert not _stored(admin, real_event["id"])


def test_timestamp_within_tolerance_is_accepted(deliver, admin, real_event):
    response = deliver(real_event, timestamp=int(time.time()) - 240)

    assert response.status_code == 200
    assert _stored(admin, real_event["id"])


def _event_without(path: tuple[str, ...]):
    evt = load_fixture(CHARGE_SUCCEEDED)
    target = evt
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return evt


@pytest.mark.parametrize("body", [
    pytest.param(b"not json at all", id="not-json"),
    pytest.param(b"", id="empty"),
    pytest.param(b'{"id": "evt_1", "object": "event", ', id="truncated"),
    pytest.param(b"[]", id="array"),
    pytest.param(b'[{"id": "evt_inarray", "object": "event", "type": "charge.succeeded",'
                 b' "data": {"object": {}}}]', id="array-of-event"),
    pytest.param(b'"evt_astring"', id="string"),
    pytest.param(b"42", id="number"),
    pytest.param(b"null", id="null"),
    pytest.param(json.dumps(_event_without(("id",))).encode(), id="no-id"),
    pytest.param(json.dumps(dict(load_fixture(CHARGE_SUCCEEDED), id="ch_notanevent")).encode(), id="id-not-evt"),
    pytest.param(json.dumps(dict(load_fixture(CHARGE_SUCCEEDED), id=12345)).encode(), id="id-number"),
    pytest.param(json.dumps(dict(load_fixture(CHARGE_SUCCEEDED), object="charge")).encode(), id="object-not-event"),
    pytest.param(json.dumps(_event_without(("object",))).encode(), id="no-object"),
    pytest.param(json.dumps(_event_without(("type",))).encode(), id="no-type"),
    pytest.param(json.dumps(dict(load_fixture(CHARGE_SUCCEEDED), type=None)).encode(), id="type-null"),
    pytest.param(json.dumps(_event_without(("data",))).encode(), id="no-data"),
    pytest.param(json.dumps(_event_without(("data", "object"))).encode(), id="no-data-object"),
    pytest.param(json.dumps(dict(load_fixture(CHARGE_SUCCEEDED), data={"object": "ch_1"})).encode(),
                 id="data-object-string"),
])
def test_body_that_is_not_an_event_is_400_and_nothing_stored(client, admin, body):
    response = _post(client, body, sign(body))

    assert response.status_code == 400
    assert "error" in response.get_json()
    assert _ledger_ids(admin) == []


def test_non_utf8_body_is_400(client, admin):
    body = b'{"id": "evt_latin1", "object": "event", "type": "charge.succeeded", "data": {"object": {"name": "\xe9"}}}'
    ts = int(time.time())

    response = _post(client, body, f"t={ts},v1={_signature(body, WEBHOOK_SECRET, ts)}")

    assert response.status_code == 400
    assert _ledger_ids(admin) == []


def test_nul_escape_in_json_is_400_not_500(deliver, admin, real_event):
    real_event["data"]["object"]["description"] = "nul \u0000 inside"

    response = deliver(real_event)

    assert response.status_code == 400
    assert _ledger_ids(admin) == []


def test_nul_escape_in_a_key_is_400_not_500(deliver, admin, real_event):
    real_event["data"]["object"]["metadata"] = {"a\u0000b": "x"}

    response = deliver(real_event)

    assert response.status_code == 400
    assert _ledger_ids(admin) == []


@pytest.mark.parametrize("depth", [2_000, 100_000])
def test_huge_nesting_is_400_not_500(client, admin, depth):
    nested = "[" * depth + "]" * depth
    body = ('{"id": "evt_deep", "object": "event", "type": "charge.succeeded", "data": {"object": {"x": '
            + nested + "}}}").encode()

    response = _post(client, body, sign(body))

    assert response.status_code == 400
    assert _ledger_ids(admin) == []


def test_body_over_one_mebibyte_is_413(client, admin, real_event):
    real_event["data"]["object"]["metadata"] = {"padding": "x" * (1024 * 1024)}
    body = json.dumps(real_event).encode()

    response = _post(client, body, sign(body))

    assert response.status_code == 413
    assert _ledger_ids(admin) == []


def test_body_just_under_one_mebibyte_is_accepted(client, admin, real_event):
    real_event["data"]["object"]["metadata"] = {"padding": ""}
    base = len(json.dumps(real_event).encode())
    real_event["data"]["object"]["metadata"] = {"padding": "x" * (1024 * 1024 - base)}
    body = json.dumps(real_event).encode()
    assert len(body) == 1024 * 1024

    response = _post(client, body, sign(body))

    assert response.status_code == 200
    assert _stored(admin, real_event["id"])


# --- dependencies down --------------------------------------------------------------------------

@pytest.fixture
def database_down(services):
    """Services whose PostgreSQL pool points at a closed port (short pool timeout keeps the test quick)."""
    pool = ConnectionPool("postgresql://root@127.0.0.1:1/nowhere", min_size=1, max_size=1, open=False,
                          timeout=1, reconnect_timeout=1, kwargs={"connect_timeout": 1})
    down = dataclasses.replace(services, pool=pool)
    yield down
    pool.close()


@pytest.fixture
def redis_down(settings):
    svc = build(dataclasses.replace(settings, redis_url="redis://127.0.0.1:1/0"), pool_size=2).open()
    yield svc
    svc.pool.close()


def test_database_down_is_503_so_stripe_retries(database_down, admin, real_event):
    client = _app_for(database_down).test_client()
    body = json.dumps(real_event).encode()

    response = _post(client, body, sign(body))

    assert response.status_code == 503
    assert "error" in response.get_json()
    assert not _stored(admin, real_event["id"])  # the healthy app sees nothing


def test_healthz(client):
    assert client.get("/healthz").status_code == 200


def test_readyz_when_everything_answers(client):
    assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize("down, named, not_named", [("database_down", "postgres", "redis"),
                                                    ("redis_down", "redis", "postgres")])
def test_readyz_names_what_is_down(request, down, named, not_named):
    response = _app_for(request.getfixturevalue(down)).test_client().get("/readyz")

    assert response.status_code == 503
    text = response.get_data(as_text=True).lower()
    assert named in text
    assert not_named not in text


def test_healthz_while_dependencies_are_down(redis_down):
    assert _app_for(redis_down).test_client().get("/healthz").status_code == 200


def test_stored_even_when_redis_is_down(redis_down, admin, real_event):
    """The event is durable in PostgreSQL; the worker's sweep enqueues it later."""
    client = _app_for(redis_down).test_client()
    body = json.dumps(real_event).encode()

    response = _post(client, body, sign(body))

    assert response.status_code == 200
    assert _stored(admin, real_event["id"])


def test_connect_event_keeps_its_account(deliver, admin):
    # charge built from supabase charge_succeeded.json, sent by a connected account
    evt = event("charge.succeeded", charge("ch_connect1", customer="cus_connect1", amount=100), created=T0,
                account="acct_1ConnectedAcct")

    assert deliver(evt).status_code == 200

    status, stored = admin("GET", f"/events/{evt['id']}")
    assert status == 200 and stored["account"] == "acct_1ConnectedAcct"
