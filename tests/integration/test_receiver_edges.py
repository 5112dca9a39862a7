"""Receiver edge cases the caller controls: none of them may produce a 500 or store anything."""
import json

from tests.support import sign


def _post(client, body: bytes):
    return client.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": sign(body)})


def _event(**extra):
    return {"id": "evt_edge_1", "object": "event", "type": "charge.succeeded", "created": 1700000000,
            "data": {"object": {"id": "ch_1", "object": "charge"}}, **extra}


def test_nul_escape_is_refused_and_not_stored(client, admin):
    body = json.dumps(_event(note="a\u0000b")).encode()
    response = _post(client, body)
    assert response.status_code == 400
    assert "cannot be stored" in response.get_json()["error"]
    assert admin("GET", "/events/evt_edge_1")[0] == 404


def test_deep_nesting_is_refused(client):
    body = b'{"id":"evt_edge_2","object":"event","type":"x","data":{"object":' + b'{"a":' * 50000 + b"1" + b"}" * 50002
    assert _post(client, body).status_code == 400


def test_huge_created_is_refused(client, admin):
    assert _post(client, json.dumps(_event(created=10**30)).encode()).status_code == 400
    assert admin("GET", "/events/evt_edge_1")[0] == 404


def test_raw_body_is_stored_as_received(client, admin):
    body = json.dumps(_event(), indent=2).encode()
    assert _post(client, body).status_code == 200
    status, stored = admin("GET", "/events/evt_edge_1")
    assert stored["payload"] == _event()


def test_nul_in_ids_and_queries_is_a_400_not_a_500(client, admin):
    from tests.support import ADMIN_TOKEN

    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for path in ("/admin/api/customers/abc%00def", "/admin/api/events/evt_%00", "/admin/api/customers?q=a%00b",
                 "/admin/api/stripe-customers/cus_%00"):
        response = client.get(path, headers=headers)
        assert response.status_code == 400, (path, response.status_code)
        assert "error" in response.get_json()


def test_json_that_jsonb_cannot_hold_is_not_json(client, admin):
    for body in (b'{"id":"evt_edge_1","object":"event","type":"x","amount":NaN,"data":{"object":{}}}',
                 b'{"id":"evt_edge_1","object":"event","type":"x","amount":-Infinity,"data":{"object":{}}}',
                 b'{"id":"evt_edge_1","object":"event","type":"x","note":"\\ud800","data":{"object":{}}}'):
        response = _post(client, body)
        assert (response.status_code, response.get_json()) == (400, {"error": "body is not JSON"}), body
    assert admin("GET", "/events/evt_edge_1")[0] == 404


def test_a_number_beyond_64_bits_outside_the_fields_read_is_stored_exactly(client, admin):
    body = json.dumps(_event(note=2**70)).encode()
    assert _post(client, body).status_code == 200
    assert admin("GET", "/events/evt_edge_1")[1]["payload"]["note"] == 2**70


def test_a_created_no_calendar_holds_is_refused_and_not_stored(client, admin):
    """A `created` beyond year 9999 fits PostgreSQL's bigint but no datetime: stored, it made the console's page
    of the event (and whatever reads it as a time) fail with a 500."""
    from tests.integration.test_console_session import sign_in

    for created in (253402300800, 10**15, -62135596801):
        response = _post(client, json.dumps(_event(created=created)).encode())
        assert response.status_code == 400 and "created" in response.get_json()["error"], (created, response.data)
        assert admin("GET", "/events/evt_edge_1")[0] == 404
    assert _post(client, json.dumps(_event(created=253402300799)).encode()).status_code == 200  # 9999-12-31 23:59:59
    sign_in(client)
    assert client.get("/admin/events/evt_edge_1").status_code == 200
