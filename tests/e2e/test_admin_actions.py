"""Admin actions, end to end: admin API → Stripe API (tests/fake_stripe) → the Stripe event,
signed, to our receiver → worker → rows, read back through the admin API.

the README's "Admin actions" and docs/rules.md, rules 1–4, 9, 11 and 12. The customer, charge and subscription are built by
tests/stripe_events.py from the supabase fixtures and bought through the real pipeline first.
"""
from __future__ import annotations

import time

import psycopg
import pytest

from domain import links
from tests.stripe_events import DAY, T0, charge, customer, event, iso, subscription

COURSE = "course_admin_basics"
CLUB = "course_admin_club"
PERIOD_END = T0 + 30 * DAY
CONNECTED = "acct_1AdminConnected"


def ids(account=None):
    tail = "C" if account else "P"  # Stripe ids are unique across accounts
    return {"cus": f"cus_Admin{tail}", "ch": f"ch_Admin{tail}", "sub": f"sub_Admin{tail}"}


@pytest.fixture
def world(stripe_api):
    """The fake Stripe, where a refund we create answers `pending` at first."""
    return stripe_api


@pytest.fixture
def bought(world, send, profile):
    """A customer who bought COURSE (4900 usd) and subscribes to CLUB, in Stripe and in our records;
    returns the customer's profile."""

    def _buy(account=None, email="ada@example.com", sub_status="active"):
        i = ids(account)
        cus = customer(i["cus"], email=email, name="Ada Admin")
        ch = charge(i["ch"], customer=i["cus"], amount=4900, created=T0, metadata={"course_id": COURSE})
        sub = subscription(i["sub"], customer=i["cus"], created=T0, status=sub_status, metadata={"course_id": CLUB},
                           current_period_start=T0, current_period_end=PERIOD_END)
        world.put(cus, ch, sub, account=account)
        send(event("customer.created", cus, created=T0, account=account),
             event("charge.succeeded", ch, created=T0, account=account),
             event("customer.subscription.created", sub, created=T0, account=account))
        return profile(i["cus"], account)

    return _buy


@pytest.fixture
def deliver_all(world, send, admin):
    """Deliver what Stripe sent about our changes; every event must end processed."""

    def _deliver():
        events = world.take_events()
        send(*events)
        for evt in events:
            status, body = admin("GET", f"/events/{evt['id']}")
            assert (status, body["status"]) == (200, "processed"), body
        return events

    return _deliver


def _payment(prof, ch):
    return next(p for p in prof["payments"] if p["stripe_charge_id"] == ch)


def _ours(prof, kind_prefix):
    """Activity entries of this kind that our admin actions made."""
    return [a for a in prof["activity"] if a["kind"].startswith(kind_prefix) and a["origin"] == "teachery"]


def _rows(services, sql):
    with psycopg.connect(services.settings.database_url) as conn:
        return conn.execute(sql).fetchall()


# --- PATCH /customers/{id} ----------------------------------------------------------------------

def test_edit_customer_goes_to_stripe_and_comes_back(admin, bought, world, deliver_all, profile):
    before = bought()

    status, body = admin("PATCH", f"/customers/{before['id']}", {"name": "Ada Lovelace", "email": "ada@lovelace.org"})

    assert status == 200, body
    assert (body["name"], body["email"]) == ("Ada Lovelace", "ada@lovelace.org")
    [write] = world.writes()
    assert (write["method"], write["path"], write["account"]) == ("POST", "/v1/customers/cus_AdminP", None)
    assert write["form"] == {"name": "Ada Lovelace", "email": "ada@lovelace.org"}
    assert write["idempotency_key"].startswith("teachery-")
    [entry] = _ours(body, "customer.updated")
    assert "admin action" in entry["message"] and entry["stripe_event_id"] is None

    [updated] = deliver_all()
    assert updated["type"] == "customer.updated"
    after = profile("cus_AdminP")
    assert (after["name"], after["email"]) == ("Ada Lovelace", "ada@lovelace.org")
    assert after["enrollments"] == before["enrollments"] and after["payments"] == before["payments"]


@pytest.mark.parametrize("body, message", [
    ({"name": "x", "phone": "1"}, "unknown field"),
    ({"name": 5}, "name must be"),
    ({"name": "A\x00da"}, "name must be"),
    ({"email": "not-an-email"}, "email must be an email address"),
    ({"email": None}, "email must be"),
    ({}, "nothing to change"),
    ([], "JSON object"),
])
def test_edit_customer_rejects_bad_bodies(admin, bought, world, body, message):
    cid = bought()["id"]
    status, answer = admin("PATCH", f"/customers/{cid}", body)
    assert status == 400 and message in answer["error"], answer
    assert world.writes() == []


def test_a_body_that_is_not_json_is_a_400(client, bought, world):
    from tests.support import ADMIN_TOKEN

    cid = bought()["id"]
    response = client.patch(f"/admin/api/customers/{cid}", data=b"{name:", content_type="application/json",
                            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 400 and "JSON" in response.get_json()["error"]
    assert world.writes() == []


# --- revoke / grant -----------------------------------------------------------------------------

def test_revoke_and_grant_are_local_and_touch_nothing_else(admin, bought, world, profile):
    before = bought()
    cid = before["id"]

    status, body = admin("POST", f"/customers/{cid}/courses/{COURSE}/revoke")
    assert status == 200, body
    assert body["enrollment"]["access"] == "revoked" and body["enrollment"]["revoked_at"]
    assert admin("POST", f"/customers/{cid}/courses/{COURSE}/revoke") == (200, body)  # twice is fine
    revoked = profile("cus_AdminP")
    assert [(e["course_id"], e["access"]) for e in revoked["enrollments"]] == [(COURSE, "revoked")]
    assert revoked["payments"] == before["payments"] and revoked["subscriptions"] == before["subscriptions"]
    assert len(_ours(revoked, "enrollment.revoked")) == 1

    status, body = admin("POST", f"/customers/{cid}/courses/{COURSE}/grant")
    assert status == 200 and body["enrollment"]["access"] == "active" and body["enrollment"]["revoked_at"] is None
    status, body = admin("POST", f"/customers/{cid}/courses/{CLUB}/grant")  # no enrollment yet: created
    assert status == 200 and body["enrollment"]["course_id"] == CLUB
    granted = profile("cus_AdminP")
    assert [(e["course_id"], e["access"], e["revoked_at"]) for e in granted["enrollments"]] == [
        (COURSE, "active", None), (CLUB, "active", None)]
    assert granted["payments"] == before["payments"] and granted["subscriptions"] == before["subscriptions"]
    assert len(_ours(granted, "enrollment.granted")) == 2
    assert world.writes() == []


def test_revoked_access_survives_a_redelivered_purchase(admin, bought, send, world):
    cid = bought()["id"]
    admin("POST", f"/customers/{cid}/courses/{COURSE}/revoke")
    purchase = event("charge.succeeded", world.get(None, "charge", "ch_AdminP"), created=T0)
    send(purchase)
    assert admin("GET", f"/customers/{cid}")[1]["enrollments"][0]["access"] == "revoked"


def test_revoke_of_an_unknown_enrollment_or_customer_is_404(admin, bought):
    cid = bought()["id"]
    assert admin("POST", f"/customers/{cid}/courses/course_never/revoke")[0] == 404
    assert admin("POST", "/customers/no-such-customer/courses/x/grant")[0] == 404
    assert admin("POST", "/customers/no-such-customer/courses/x/revoke")[0] == 404


# --- welcome email and links --------------------------------------------------------------------

def test_welcome_email_goes_to_the_outbox(admin, bought, services, profile):
    cid = bought()["id"]

    status, body = admin("POST", f"/customers/{cid}/welcome-email")

    assert status == 202, body
    email = body["email"]
    assert (email["to"], email["status"]) == ("ada@example.com", "queued")
    assert email["subject"] and email["login_link"] == f"http://localhost:8000/login?customer={cid}"
    assert email["courses"] == [COURSE]
    assert _rows(services, "SELECT customer_id, to_address, kind, sent_at FROM outbox") == [
        (cid, "ada@example.com", "welcome_email", None)]
    assert len(_ours(profile("cus_AdminP"), "email.welcome")) == 1


def test_links_are_built_from_the_base_url_and_the_reset_token_verifies(admin, bought, services):
    cid = bought()["id"]

    status, body = admin("GET", f"/customers/{cid}/links")

    assert status == 200 and set(body) == {"login", "password_reset", "billing", "cancel_subscription"}
    assert body["login"] == f"http://localhost:8000/login?customer={cid}"
    assert body["billing"] == body["login"].replace("login", "billing")
    assert body["cancel_subscription"].startswith("http://localhost:8000/")
    token = body["password_reset"].split("token=", 1)[1]
    assert links.verify_reset_token(links.link_key(services.settings), token, int(time.time())) == cid
    assert admin("GET", "/customers/nobody/links")[0] == 404


def test_reset_token_is_valid_for_24_hours_only():
    key, now = b"k" * 32, 1_800_000_000
    token = links.reset_token(key, "cust-1", now)
    assert links.verify_reset_token(key, token, now) == "cust-1"
    assert links.verify_reset_token(key, token, now + 24 * 3600 - 1) == "cust-1"
    assert links.verify_reset_token(key, token, now + 24 * 3600) is None
    assert links.verify_reset_token(b"other", token, now) is None
    forged = token.replace(f".{now + 24 * 3600}.", f".{now + 48 * 3600}.")
    assert links.verify_reset_token(key, forged, now + 30 * 3600) is None
    assert links.verify_reset_token(key, "garbage", now) is None


def test_the_link_secret_setting_signs_links(settings):
    assert links.link_key(settings.with_(link_secret="s3cret")) == b"s3cret"
    assert links.link_key(settings) != links.link_key(settings.with_(webhook_secrets=("whsec_other",)))


# --- refunds ------------------------------------------------------------------------------------

def test_refund_is_pending_at_once_then_stripe_confirms(admin, bought, world, deliver_all, profile):
    before = bought()

    status, body = admin("POST", "/payments/ch_AdminP/refund", {"reason": "requested_by_customer"})

    assert status == 202, body
    refund = body["refund"]
    assert (refund["amount"], refund["status"], refund["reason"], refund["origin"]) == (
        4900, "pending", "requested_by_customer", "teachery")
    [write] = world.writes()
    assert write["path"] == "/v1/refunds" and write["idempotency_key"].startswith("teachery-")
    assert write["form"] == {"charge": "ch_AdminP", "amount": "4900", "reason": "requested_by_customer",
                               "metadata[teachery_origin]": "teachery"}
    paid = _payment(profile("cus_AdminP"), "ch_AdminP")
    assert (paid["amount_refunded"], paid["status"]) == (4900, "refunded")

    deliver_all()  # charge.refunded, refund.created: still pending
    assert _payment(profile("cus_AdminP"), "ch_AdminP")["refunds"][0]["status"] == "pending"
    world.settle_refund(None, refund["stripe_refund_id"], "succeeded")
    succeeded = {e["id"] for e in deliver_all()}

    after = profile("cus_AdminP")
    paid = _payment(after, "ch_AdminP")
    assert paid["refunds"] == [{**{k: refund[k] for k in ("stripe_refund_id", "amount", "reason", "origin")},
                                "status": "succeeded"}]
    assert after["enrollments"] == before["enrollments"]  # docs/rules.md, rule 1
    assert after["subscriptions"] == before["subscriptions"]
    assert [a["origin"] for a in after["activity"] if a["stripe_event_id"] in succeeded] == ["stripe"]
    assert all(a["origin"] == "teachery" for a in after["activity"]
               if a["kind"].startswith("refund.pending") or a["kind"] == "payment.status")


def test_a_refund_stripe_answers_succeeded_still_starts_pending(admin, bought, world, deliver_all, profile):
    bought()
    world.refund_answer_status = "succeeded"
    status, body = admin("POST", "/payments/ch_AdminP/refund", {"amount": 100})
    assert (status, body["refund"]["status"]) == (202, "pending")
    deliver_all()  # refund.created says succeeded: Stripe confirms
    assert _payment(profile("cus_AdminP"), "ch_AdminP")["refunds"][0]["status"] == "succeeded"


def test_partial_refunds_add_up_and_a_failed_one_gives_back(admin, bought, world, deliver_all, profile):
    bought()
    s1, first = admin("POST", "/payments/ch_AdminP/refund", {"amount": 1000})
    s2, second = admin("POST", "/payments/ch_AdminP/refund", {"amount": 1500, "reason": "duplicate"})
    assert (s1, s2) == (202, 202)
    assert second["payment"] == {"stripe_charge_id": "ch_AdminP", "amount": 4900, "currency": "usd",
                                 "amount_refunded": 2500, "status": "partially_refunded"}

    status, body = admin("POST", "/payments/ch_AdminP/refund", {"amount": 2401})  # 2400 left
    assert status == 400 and "at most 2400" in body["error"]
    assert len(world.writes("/v1/refunds")) == 2

    deliver_all()
    world.settle_refund(None, first["refund"]["stripe_refund_id"], "succeeded")
    world.settle_refund(None, second["refund"]["stripe_refund_id"], "failed")
    deliver_all()
    paid = _payment(profile("cus_AdminP"), "ch_AdminP")
    assert (paid["amount_refunded"], paid["status"]) == (1000, "partially_refunded")
    assert {r["amount"]: r["status"] for r in paid["refunds"]} == {1000: "succeeded", 1500: "failed"}

    status, body = admin("POST", "/payments/ch_AdminP/refund", {})  # the rest: 3900
    assert (status, body["refund"]["amount"], body["payment"]["status"]) == (202, 3900, "refunded")


def test_an_over_refund_stripe_refuses_is_passed_on_and_changes_nothing(admin, bought, world, profile, services):
    bought()
    world.refund(None, "ch_AdminP", 4000)  # in Stripe's dashboard; its events are not here yet
    world.take_events()
    before = profile("cus_AdminP")

    status, body = admin("POST", "/payments/ch_AdminP/refund", {"amount": 1000})

    assert status == 400 and body["error"] == "Refund amount (1000) is greater than unrefunded amount on charge (900)"
    assert profile("cus_AdminP") == before
    assert _rows(services, "SELECT kind, outcome, status_code FROM admin_actions") == [
        ("payment.refund", "rejected", 400)]


@pytest.mark.parametrize("body, message", [
    ({"amount": 0}, "amount must be a positive"),
    ({"amount": "100"}, "amount must be a positive"),
    ({"amount": True}, "amount must be a positive"),
    ({"amount": 4901}, "at most 4900"),
    ({"reason": "changed_mind"}, "reason must be one of duplicate, fraudulent, requested_by_customer"),
    ({"amount": 100, "currency": "eur"}, "unknown field"),
])
def test_refund_rejects_bad_bodies(admin, bought, world, body, message):
    bought()
    status, answer = admin("POST", "/payments/ch_AdminP/refund", body)
    assert status == 400 and message in answer["error"], answer
    assert world.writes() == []


def test_same_idempotency_key_applies_once(client, bought, world, profile):
    from tests.support import ADMIN_TOKEN

    bought()
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Idempotency-Key": "retry-me-1"}
    first = client.post("/admin/api/payments/ch_AdminP/refund", json={"amount": 700}, headers=headers)
    second = client.post("/admin/api/payments/ch_AdminP/refund", json={"amount": 700}, headers=headers)
    other = client.post("/admin/api/payments/ch_AdminP/refund", json={"amount": 800}, headers=headers)

    assert (first.status_code, second.status_code) == (202, 202)
    assert second.get_json() == first.get_json()
    assert other.status_code == 409 and "Idempotency-Key" in other.get_json()["error"]
    assert [w["idempotency_key"] for w in world.writes()] == ["teachery-retry-me-1"]
    assert len(_payment(profile("cus_AdminP"), "ch_AdminP")["refunds"]) == 1


# --- subscriptions ------------------------------------------------------------------------------

def _untouched(prof, before):
    """Rules 2 and 4 and 1: cancels, pauses and refunds never touch access or (for subscriptions) payments."""
    assert prof["enrollments"] == before["enrollments"]
    assert prof["payments"] == before["payments"]


def test_cancel_at_period_end(admin, bought, world, deliver_all, profile):
    before = bought()

    status, body = admin("POST", "/subscriptions/sub_AdminP/cancel", {"at_period_end": True})

    assert status == 202, body
    sub = body["subscription"]
    assert (sub["status"], sub["cancel_at_period_end"], sub["cancel_at"]) == ("active", True, iso(PERIOD_END))
    assert set(sub) == set(before["subscriptions"][0])
    [write] = world.writes()
    assert (write["method"], write["path"], write["form"]) == (
        "POST", "/v1/subscriptions/sub_AdminP", {"cancel_at_period_end": "true"})
    deliver_all()
    after = profile("cus_AdminP")
    assert after["subscriptions"] == [sub]
    _untouched(after, before)
    assert _ours(after, "subscription.cancel_scheduled")


def test_cancel_now_deletes_in_stripe_and_refunds_nothing(admin, bought, world, deliver_all, profile):
    before = bought()

    status, body = admin("POST", "/subscriptions/sub_AdminP/cancel", {"at_period_end": False})

    assert status == 202, body
    assert body["subscription"]["status"] == "canceled" and body["subscription"]["canceled_at"]
    assert [(w["method"], w["path"]) for w in world.writes()] == [("DELETE", "/v1/subscriptions/sub_AdminP")]
    [deleted] = deliver_all()
    assert deleted["type"] == "customer.subscription.deleted"
    after = profile("cus_AdminP")
    assert after["subscriptions"] == [body["subscription"]]
    _untouched(after, before)
    assert world.writes("/v1/refunds") == []
    status, body = admin("POST", "/subscriptions/sub_AdminP/cancel", {"at_period_end": False})
    assert status == 409 and "canceled" in body["error"]


def test_pause_then_resume_collection(admin, bought, world, deliver_all, profile):
    before = bought()

    status, body = admin("POST", "/subscriptions/sub_AdminP/pause",
                         {"behavior": "void", "resumes_at": "2030-03-01T00:00:00Z"})

    assert status == 202, body
    assert body["subscription"]["pause_collection"] == {"behavior": "void", "resumes_at": "2030-03-01T00:00:00Z"}
    assert world.writes()[-1]["form"] == {"pause_collection[behavior]": "void",
                                          "pause_collection[resumes_at]": "1898553600"}
    deliver_all()
    assert profile("cus_AdminP")["subscriptions"] == [body["subscription"]]

    status, body = admin("POST", "/subscriptions/sub_AdminP/resume")
    assert (status, body["subscription"]["pause_collection"]) == (202, None)
    assert world.writes()[-1]["form"] == {"pause_collection": ""}
    deliver_all()
    after = profile("cus_AdminP")
    assert after["subscriptions"][0]["pause_collection"] is None
    _untouched(after, before)
    assert _ours(after, "subscription.paused") and _ours(after, "subscription.resumed")


def test_resume_of_a_paused_subscription_uses_stripes_resume_endpoint(admin, bought, world, deliver_all, profile):
    bought(sub_status="paused")

    status, body = admin("POST", "/subscriptions/sub_AdminP/resume", {})

    assert (status, body["subscription"]["status"]) == (202, "active")
    [write] = world.writes()
    assert (write["path"], write["form"]) == ("/v1/subscriptions/sub_AdminP/resume",
                                                {"billing_cycle_anchor": "unchanged"})
    deliver_all()
    assert profile("cus_AdminP")["subscriptions"][0]["status"] == "active"


def test_a_later_stripe_event_still_wins_over_an_admin_answer(admin, bought, world, send, profile):
    bought()
    admin("POST", "/subscriptions/sub_AdminP/cancel", {"at_period_end": True})
    world.take_events()
    sub = world.get(None, "subscription", "sub_AdminP")
    older = subscription("sub_AdminP", customer="cus_AdminP", created=T0, metadata={"course_id": CLUB},
                         current_period_start=T0, current_period_end=PERIOD_END)
    send(event("customer.subscription.updated", older, created=T0))  # the same second as what we knew: older
    assert profile("cus_AdminP")["subscriptions"][0]["cancel_at_period_end"] is True
    sub.update(cancel_at_period_end=False, cancel_at=None)  # undone in Stripe's dashboard, later
    send(event("customer.subscription.updated", sub, created=T0 + 1))
    assert profile("cus_AdminP")["subscriptions"][0]["cancel_at_period_end"] is False


@pytest.mark.parametrize("path, body, message", [
    ("/subscriptions/sub_AdminP/cancel", {}, "missing field(s): at_period_end"),
    ("/subscriptions/sub_AdminP/cancel", {"at_period_end": "yes"}, "at_period_end must be true or false"),
    ("/subscriptions/sub_AdminP/pause", {"behavior": "stop"}, "behavior must be one of"),
    ("/subscriptions/sub_AdminP/pause", {"behavior": "void", "resumes_at": "soon"}, "resumes_at must be an ISO"),
    ("/subscriptions/sub_AdminP/resume", {"now": True}, "unknown field"),
])
def test_subscription_actions_reject_bad_bodies(admin, bought, world, path, body, message):
    bought()
    status, answer = admin("POST", path, body)
    assert status == 400 and message in answer["error"], answer
    assert world.writes() == []


# --- failures, accounts, auth -------------------------------------------------------------------

ACTIONS = [
    ("PATCH", "/customers/{cid}", {"name": "N"}),
    ("POST", "/payments/ch_AdminP/refund", {"amount": 100}),
    ("POST", "/subscriptions/sub_AdminP/cancel", {"at_period_end": True}),
    ("POST", "/subscriptions/sub_AdminP/pause", {"behavior": "void"}),
    ("POST", "/subscriptions/sub_AdminP/resume", None),
]


@pytest.mark.parametrize("method, path, body", ACTIONS)
def test_stripe_down_is_503_and_changes_nothing(admin, bought, world, profile, services, method, path, body):
    before = bought()
    world.down = True

    status, answer = admin(method, path.format(cid=before["id"]), body)

    assert status == 503 and "Stripe" in answer["error"], answer
    assert profile("cus_AdminP") == before
    assert _rows(services, "SELECT outcome FROM admin_actions") == [("unavailable",)]


@pytest.mark.parametrize("method, path, body", ACTIONS)
def test_without_an_api_key_the_answer_is_503_and_says_so(admin, bought, world, services, monkeypatch,
                                                          method, path, body):
    before = bought()
    monkeypatch.setattr(services.stripe, "api_key", None)

    status, answer = admin(method, path.format(cid=before["id"]), body)

    assert status == 503 and "STRIPE_API_KEY is not set" in answer["error"]
    assert world.writes() == []


def test_connected_account_actions_carry_the_records_account(admin, bought, world, deliver_all, profile):
    platform = bought()
    i = ids(CONNECTED)
    theirs = bought(CONNECTED, email="acct@example.com")

    assert admin("PATCH", f"/customers/{theirs['id']}", {"name": "Connected Ada"})[0] == 200
    assert admin("POST", f"/payments/{i['ch']}/refund", {"amount": 500})[0] == 202
    assert admin("POST", f"/subscriptions/{i['sub']}/pause", {"behavior": "keep_as_draft"})[0] == 202
    assert {w["account"] for w in world.writes()} == {CONNECTED}
    events = deliver_all()
    assert {e["account"] for e in events} == {CONNECTED}

    after = profile(i["cus"], CONNECTED)
    assert after["name"] == "Connected Ada"
    assert _payment(after, i["ch"])["amount_refunded"] == 500
    assert after["subscriptions"][0]["pause_collection"] == {"behavior": "keep_as_draft", "resumes_at": None}
    assert profile("cus_AdminP") == platform


@pytest.mark.parametrize("method, path", [
    ("PATCH", "/customers/x"), ("POST", "/customers/x/courses/c/revoke"), ("POST", "/customers/x/courses/c/grant"),
    ("POST", "/customers/x/welcome-email"), ("GET", "/customers/x/links"), ("POST", "/payments/ch_x/refund"),
    ("POST", "/subscriptions/sub_x/cancel"), ("POST", "/subscriptions/sub_x/pause"),
    ("POST", "/subscriptions/sub_x/resume"),
])
def test_bad_token_is_401_and_unknown_ids_are_404(client, admin, services, method, path):
    response = client.open(f"/admin/api{path}", method=method, json={},
                           headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401
    body = {"at_period_end": True} if path.endswith("cancel") else {"behavior": "void"} if "pause" in path else {}
    if method == "PATCH":
        body = {"name": "N"}
    status, answer = admin(method, path, body)
    assert status == 404 and "not found" in answer["error"], answer
