"""Input the real `teachery-sync web` refuses with a clear 4xx (and nothing changed), the one rule for
JSON bodies, and the actor recorded on what an admin action did."""
from __future__ import annotations

import json

import requests

from tests.blackbox.helpers import buyer
from tests.blackbox.service import ADMIN_TOKEN, sign

ACCT = "acct_1BBCreatorV"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def subscriber(svc):
    cus, _, sub = buyer(svc, ACCT, "Vera Valid", "vera@example.com", subscribes_to="course_poetry")
    return sub, svc.profile(cus["id"], ACCT)


def test_a_pause_that_resumes_in_the_past_is_refused_before_stripe_is_asked(svc):
    sub, _ = subscriber(svc)
    status, body = svc.admin("POST", f"/subscriptions/{sub['id']}/pause",
                             {"behavior": "void", "resumes_at": "2020-01-01T00:00:00Z"})
    assert status == 400 and "resumes_at" in body["error"] and "future" in body["error"], body
    assert svc.fake.writes(f"/v1/subscriptions/{sub['id']}") == []
    status, body = svc.admin("POST", f"/subscriptions/{sub['id']}/pause",
                             {"behavior": "void", "resumes_at": "2099-01-01T00:00:00Z"})
    assert status == 202, body


def test_course_ids_follow_the_id_pattern(svc):
    _, profile = subscriber(svc)
    cid = profile["id"]
    for course in ("course\u202eevil", "course a", "c" * 256, "course.yoga"):
        r = requests.post(f"{svc.url}/admin/api/customers/{cid}/courses/{requests.utils.quote(course)}/grant",
                          headers=AUTH, timeout=10)
        assert r.status_code == 404 and isinstance(r.json()["error"], str), (course, r.status_code, r.text)
    assert [e["course_id"] for e in svc.profile(profile["stripe_customer_id"], ACCT)["enrollments"]] == [
        "course_poetry"]
    status, body = svc.admin("POST", f"/customers/{cid}/courses/course_new-2/grant")
    assert status == 200 and body["enrollment"]["course_id"] == "course_new-2", body


def test_a_lone_surrogate_is_refused_naming_the_field(svc):
    _, profile = subscriber(svc)
    r = requests.patch(f"{svc.url}/admin/api/customers/{profile['id']}", data=b'{"name": "Ve\\ud800ra"}',
                       headers={**AUTH, "Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert "name" in error and "surrogate" in error and "syntax" not in error, error
    assert svc.profile(profile["stripe_customer_id"], ACCT)["name"] == "Vera Valid"
    assert svc.fake.writes(f"/v1/customers/{profile['stripe_customer_id']}") == []


def test_numbers_in_query_strings_are_ascii_digits(svc):
    for limit in ("\u0661\u0662", "\uff11\uff12", "1\u00b2", " 12", "+12"):
        status, body = svc.admin("GET", f"/events?limit={requests.utils.quote(limit)}")
        assert status == 400 and "limit" in body["error"], (limit, status, body)
    assert svc.admin("GET", "/events?limit=12")[0] == 200


def test_a_webhook_type_that_is_too_long_is_refused_as_too_long(svc):
    body = json.dumps({"id": "evt_BBlongtype", "object": "event", "type": "x" * 10_000, "created": 1767225600,
                       "data": {"object": {"id": "cus_1", "object": "customer"}}}).encode()
    r = requests.post(svc.url + "/webhooks/stripe", data=body, timeout=10,
                      headers={"Stripe-Signature": sign(body), "Content-Type": "application/json"})
    assert r.status_code == 400 and "too long" in r.json()["error"], r.text
    assert svc.events() == []


def test_json_routes_read_the_body_whatever_its_content_type(svc):
    for i, headers in enumerate(({}, {"Content-Type": "application/x-www-form-urlencoded"},
                                 {"Content-Type": "text/plain"})):
        body = json.dumps({"dry_run": True, "customer": f"cus_ctype{i}"}).encode()  # one run per scope
        r = requests.post(svc.url + "/admin/api/reconciliations", data=body,
                          headers={**AUTH, **headers}, timeout=10)
        assert r.status_code == 202, (headers, r.text)
        r = requests.post(svc.url + "/admin/api/reconciliations", data=b'{"dryrun": true}',
                          headers={**AUTH, **headers}, timeout=10)
        assert r.status_code == 400 and "dryrun" in r.json()["error"], (headers, r.text)


def test_the_actor_is_shown_on_the_activity_an_admin_action_wrote(svc):
    _, profile = subscriber(svc)
    status, body = svc.admin("POST", f"/customers/{profile['id']}/courses/course_poetry/revoke")
    assert status == 200, body
    activity = svc.profile(profile["stripe_customer_id"], ACCT)["activity"]
    [revoked] = [a for a in activity if a["kind"] == "enrollment.revoked"]
    assert (revoked["origin"], revoked["actor"]) == ("teachery", "admin"), revoked
    assert all(a["actor"] is None for a in activity if a["origin"] == "stripe"), activity
