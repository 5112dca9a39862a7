"""Hostile requests against the real gunicorn: always a 4xx with a JSON error, never a 500, nothing stored."""
from __future__ import annotations

import json
import time

import requests

from tests.blackbox.service import ADMIN_TOKEN, sign


def event_body(**overrides) -> dict:
    event = {"id": "evt_BBhostile1", "object": "event", "api_version": "2024-06-20", "created": 1767225600,
             "type": "customer.updated", "livemode": False, "pending_webhooks": 1,
             "request": {"id": None, "idempotency_key": None},
             "data": {"object": {"id": "cus_BBhostile", "object": "customer", "name": "Eve", "email": "eve@example.com",
                                 "created": 1767225600, "metadata": {}}}}
    event.update(overrides)
    return event


def post_raw(svc, body: bytes, signature: str | None = "sign", **headers):
    hdrs = {"Content-Type": "application/json", **headers}
    if signature == "sign":
        hdrs["Stripe-Signature"] = sign(body)
    elif signature is not None:
        hdrs["Stripe-Signature"] = signature
    return requests.post(svc.url + "/webhooks/stripe", data=body, headers=hdrs, timeout=15)


def assert_refused(r, status=400):
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert isinstance(r.json().get("error"), str) and r.json()["error"]


def test_bad_webhooks_are_400_and_store_nothing(svc):
    good = json.dumps(event_body()).encode()
    now = int(time.time())
    assert_refused(post_raw(svc, good, signature=None))
    assert_refused(post_raw(svc, good, signature=""))
    assert_refused(post_raw(svc, good, signature="garbage"))
    assert_refused(post_raw(svc, good, signature="t=abc,v1=zz"))
    assert_refused(post_raw(svc, good, signature=sign(good, "whsec_someone_else")))
    assert_refused(post_raw(svc, good, signature=sign(good, timestamp=now - 3600)))
    assert_refused(post_raw(svc, good, signature=sign(good + b" ")))  # body changed after signing
    assert_refused(post_raw(svc, good, signature=sign(good).replace("v1=", "v0=")))
    for body in (b"", b"{", b"not json", b"[]", b"null", b"42", b'"evt_1"',
                 json.dumps(event_body(id="cus_123")).encode(),
                 json.dumps(event_body(id="evt_" + "a" * 5000)).encode(),
                 json.dumps(event_body(object="customer")).encode(),
                 json.dumps(event_body(type=None)).encode(),
                 json.dumps(event_body(type=["a"])).encode(),
                 json.dumps(event_body(data={"object": "x"})).encode(),
                 json.dumps(event_body(data=None)).encode(),
                 json.dumps(event_body(account="cus_notanaccount")).encode(),
                 json.dumps(event_body(account=12)).encode(),
                 json.dumps(event_body(created="yesterday")).encode(),
                 json.dumps(event_body(id="evt_with\u0000nul")).encode(),
                 json.dumps(event_body(type="customer.\u0000updated")).encode(),
                 json.dumps(event_body()).encode().replace(b'"Eve"', b'"E\x00ve"'),  # raw NUL: not JSON
                 json.dumps(event_body()).encode().replace(b'"Eve"', b'"\xff\xfe"'),  # not UTF-8
                 b"[" * 200_000 + b"]" * 200_000):
        r = post_raw(svc, body)
        assert r.status_code == 400, (body[:80], r.status_code, r.text[:200])
    # A \u0000 inside the payload cannot go into jsonb: still the caller's 400, never a 500.
    r = post_raw(svc, json.dumps(event_body(id="evt_BBnul")).encode().replace(b'"Eve"', b'"E\\u0000ve"'))
    assert r.status_code in (200, 400), r.text
    stored = {e["id"] for e in svc.events()}
    assert stored <= {"evt_BBnul"}, stored


def test_oversized_body_is_413(svc):
    event = event_body()
    event["data"]["object"]["padding"] = "x" * (2 * 1024 * 1024)
    body = json.dumps(event).encode()
    r = post_raw(svc, body)
    assert r.status_code == 413, (r.status_code, r.text[:200])
    # Not signed at all, and a Content-Length that lies about a huge body.
    r = post_raw(svc, b"x" * (2 * 1024 * 1024), signature=None)
    assert r.status_code == 413, r.status_code
    assert svc.events() == []
    # Just under the limit is still accepted.
    event["data"]["object"]["padding"] = "x" * (1024 * 1024 - 2000)
    assert post_raw(svc, json.dumps(event).encode()).status_code == 200


def test_huge_numbers_never_500(svc):
    for i, (field, value) in enumerate([("created", 10 ** 30), ("created", -5), ("created", 2 ** 63)]):
        r = post_raw(svc, json.dumps(event_body(id=f"evt_BBhuge{i}", **{field: value})).encode())
        assert r.status_code in (200, 400), (field, value, r.status_code, r.text)
    charge = {"id": "ch_BBhuge", "object": "charge", "amount": 10 ** 40, "amount_refunded": 0, "currency": "usd",
              "customer": "cus_BBhuge", "created": 1767225600, "status": "succeeded", "paid": True,
              "metadata": {"course_id": "c1"}, "refunds": {"data": []},
              "billing_details": {"email": "h@example.com", "name": "Huge"}}
    r = post_raw(svc, json.dumps(event_body(id="evt_BBhugecharge", type="charge.succeeded",
                                            data={"object": charge})).encode())
    assert r.status_code in (200, 400), r.text
    r = post_raw(svc, json.dumps(event_body(id="evt_BBfloat", created=1.5e9)).encode())
    assert r.status_code == 400
    # Whatever was accepted is settled by the worker (processed/ignored/failed), not stuck.
    events = svc.wait_settled(timeout=30, allow_waiting=True)
    assert all(e["status"] in ("processed", "ignored", "failed", "waiting") for e in events), events
    for path in ("/events?limit=99999999999999999999999", "/events?limit=-1", "/events?limit=abc",
                 "/customers?q=" + "x" * 100_000):
        status, body = svc.admin("GET", path)
        assert status in (200, 400, 414), (path[:60], status, body)
    status, body = svc.admin("POST", "/payments/ch_BBhuge/refund", {"amount": 10 ** 40})
    assert status in (400, 404, 409), (status, body)


def test_admin_api_auth_unknown_ids_and_methods(svc):
    url = svc.url + "/admin/api"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": ADMIN_TOKEN},
                    {"Authorization": f"Basic {ADMIN_TOKEN}"}, {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
                    {"Authorization": "Bearer "}):
        for method, path in (("GET", "/customers?q=a"), ("GET", "/events"), ("GET", "/no/such/route"),
                             ("POST", "/payments/ch_x/refund"), ("DELETE", "/customers/x")):
            r = requests.request(method, url + path, headers=headers, timeout=10)
            assert r.status_code == 401, (headers, method, path, r.status_code)
            assert isinstance(r.json()["error"], str)
    for path in ("/customers/00000000-0000-0000-0000-000000000000", "/customers/not-a-uuid",
                 "/customers/%20", "/stripe-customers/cus_BBnope", "/stripe-customers/cus_BBnope?account=acct_BBx",
                 "/events/evt_BBnope", "/reconciliations/00000000-0000-0000-0000-000000000000",
                 "/reconciliations/42", "/customers/not-a-uuid/links"):
        status, body = svc.admin("GET", path)
        assert status == 404, (path, status, body)
        assert isinstance(body["error"], str)
    for method, path, body in (("POST", "/events/evt_BBnope/replay", None),
                               ("POST", "/subscriptions/sub_BBnope/resume", None),
                               ("POST", "/subscriptions/sub_BBnope/cancel", {"at_period_end": True}),
                               ("POST", "/payments/ch_BBnope/refund", {"amount": 1}),
                               ("PATCH", "/customers/00000000-0000-0000-0000-000000000000", {"name": "x"}),
                               ("POST", "/customers/00000000-0000-0000-0000-000000000000/welcome-email", None),
                               ("POST", "/customers/00000000-0000-0000-0000-000000000000/courses/c1/grant", None)):
        status, answer = svc.admin(method, path, body)
        assert status == 404, (method, path, status, answer)
    # Wrong methods.
    assert requests.get(svc.url + "/webhooks/stripe", timeout=10).status_code == 405
    assert requests.put(svc.url + "/webhooks/stripe", data=b"{}", timeout=10).status_code == 405
    for method, path in (("DELETE", "/customers/00000000-0000-0000-0000-000000000000"), ("PUT", "/events"),
                         ("DELETE", "/events/evt_x"), ("GET", "/payments/ch_x/refund"), ("POST", "/customers")):
        status, body = svc.admin(method, path)
        assert status == 405, (method, path, status, body)
    # Bad bodies and NUL characters.
    r = requests.post(url + "/reconciliations", data=b"{not json", timeout=10,
                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    for body in ({"dryrun": True}, {"account": "cus_1"}, {"since": "yesterday"}, {"dry_run": "yes"}, [1]):
        status, answer = svc.admin("POST", "/reconciliations", body)
        assert status == 400, (body, status, answer)
    for path in ("/customers?q=%00", "/events/evt_%00", "/stripe-customers/cus_%00x",
                 "/events?type=charge%00.refunded"):
        status, body = svc.admin("GET", path)
        assert status in (400, 404), (path, status, body)
    status, body = svc.admin("POST", "/payments/ch_x/refund", {"reason": "a\u0000b"})
    assert status in (400, 404), (status, body)
    r = requests.post(url + "/reconciliations", data=b"\xff\xfe{}", timeout=10,
                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    r = requests.post(url + "/reconciliations", data=b"x" * (2 * 1024 * 1024), timeout=10,
                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"})
    assert r.status_code == 413, r.status_code
    assert svc.events() == []
    # And the service is still fine.
    assert requests.get(svc.url + "/healthz", timeout=5).status_code == 200
    assert requests.get(svc.url + "/readyz", timeout=5).status_code == 200


def test_repeated_wrong_tokens_answer_429_yet_the_right_token_passes(svc):
    """Guessing is slowed per client (AUTH_FAILURE_LIMIT, 30 a minute by default); the real admins are not
    locked out by it."""
    url = svc.url + "/admin/api/customers?q=a"
    answers = [requests.get(url, headers={"Authorization": f"Bearer guess-{i}"}, timeout=10) for i in range(35)]
    codes = [r.status_code for r in answers]
    assert codes[:30] == [401] * 30 and set(codes[30:]) == {429}, codes
    assert 0 < int(answers[-1].headers["Retry-After"]) <= 60
    assert answers[-1].json()["error"].startswith("too many failed")
    assert requests.get(url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10).status_code == 200
