"""Admin actions through the fake Stripe: the call Stripe gets, the 202 answer, and the record after
Stripe's own event about the change comes back through the receiver."""
from __future__ import annotations

from tests.blackbox.helpers import buyer, check_subscription, expected_payment, payment_view
from tests.fake_stripe import StripeError

ACCT = "acct_1BBCreatorB"


def setup_customer(svc):
    cus, charge, sub = buyer(svc, ACCT, "Ada Lovelace", "ada@example.com", course="course_math",
                             subscribes_to="course_poetry")
    return cus, charge, sub, svc.profile(cus["id"], ACCT)


def enrollments(profile):
    return sorted((e["course_id"], e["access"]) for e in profile["enrollments"])


def test_refund_is_pending_until_stripe_confirms_then_succeeded_with_origin_teachery(svc):
    cus, charge, sub, before = setup_customer(svc)
    status, body = svc.admin("POST", f"/payments/{charge['id']}/refund",
                             {"amount": 1200, "reason": "requested_by_customer"})
    assert status == 202, body
    assert body["refund"]["status"] == "pending" and body["refund"]["amount"] == 1200
    [write] = svc.fake.writes("/v1/refunds")
    assert write["account"] == ACCT
    assert write["idempotency_key"] and write["idempotency_key"].startswith("teachery-")
    assert write["params"]["charge"] == charge["id"] and write["params"]["amount"] == "1200"
    assert write["params"]["metadata"]["teachery_origin"] == "teachery"
    re_id = body["refund"]["stripe_refund_id"]
    pending = {p["stripe_charge_id"]: p for p in svc.profile(cus["id"], ACCT)["payments"]}[charge["id"]]
    assert pending["amount_refunded"] == 1200
    assert [(r["stripe_refund_id"], r["status"]) for r in pending["refunds"]] == [(re_id, "pending")]

    svc.deliver(svc.fake.take_events())  # refund.created + charge.refunded, with our idempotency key
    svc.wait_settled()
    profile = svc.profile(cus["id"], ACCT)
    payment = {p["stripe_charge_id"]: p for p in profile["payments"]}[charge["id"]]
    assert payment_view(payment) == expected_payment(svc.fake, ACCT, charge["id"])
    [refund] = payment["refunds"]
    assert (refund["status"], refund["origin"], refund["amount"]) == ("succeeded", "teachery", 1200)
    assert payment["status"] == "partially_refunded"
    assert enrollments(profile) == enrollments(before)  # docs/rules.md, rule 1
    assert any("admin action" in a["message"] and a["origin"] == "teachery" for a in profile["activity"])

    # More than what is left: 400 with Stripe untouched; the rest by default.
    status, body = svc.admin("POST", f"/payments/{charge['id']}/refund", {"amount": 999999})
    assert status == 400 and isinstance(body.get("error"), str)
    status, body = svc.admin("POST", f"/payments/{charge['id']}/refund", {"reason": "because"})
    assert status == 400
    assert len(svc.fake.writes("/v1/refunds")) == 1
    status, body = svc.admin("POST", f"/payments/{charge['id']}/refund", {})
    assert status == 202 and body["refund"]["amount"] == 3800, body
    assert len(svc.fake.writes("/v1/refunds")) == 2
    svc.settle()
    payment = {p["stripe_charge_id"]: p for p in svc.profile(cus["id"], ACCT)["payments"]}[charge["id"]]
    assert (payment["status"], payment["amount_refunded"]) == ("refunded", 5000)
    assert payment_view(payment) == expected_payment(svc.fake, ACCT, charge["id"])


def test_idempotency_key_replays_small_refund(svc):
    cus, charge, sub, before = setup_customer(svc)
    first = svc.admin("POST", f"/payments/{charge['id']}/refund", {"amount": 1000},
                      headers={"Idempotency-Key": "bb-small"})
    assert first[0] == 202
    assert svc.admin("POST", f"/payments/{charge['id']}/refund", {"amount": 1000},
                     headers={"Idempotency-Key": "bb-small"}) == first
    assert svc.admin("POST", f"/payments/{charge['id']}/refund", {"amount": 999},
                     headers={"Idempotency-Key": "bb-small"})[0] == 409
    assert len(svc.fake.writes("/v1/refunds")) == 1


def test_idempotency_key_replays_refund_of_most_of_the_payment(svc):
    cus, charge, sub, before = setup_customer(svc)
    first = svc.admin("POST", f"/payments/{charge['id']}/refund", {"amount": 3000},
                      headers={"Idempotency-Key": "bb-big"})
    assert first[0] == 202, first
    again = svc.admin("POST", f"/payments/{charge['id']}/refund", {"amount": 3000},
                      headers={"Idempotency-Key": "bb-big"})
    assert again == first
    assert len(svc.fake.writes("/v1/refunds")) == 1


def test_idempotency_key_replays_cancel(svc):
    cus, charge, sub, before = setup_customer(svc)
    first = svc.admin("POST", f"/subscriptions/{sub['id']}/cancel", {"at_period_end": False},
                      headers={"Idempotency-Key": "bb-cancel"})
    assert first[0] == 202, first
    again = svc.admin("POST", f"/subscriptions/{sub['id']}/cancel", {"at_period_end": False},
                      headers={"Idempotency-Key": "bb-cancel"})
    assert again == first


def test_refund_when_stripe_fails_changes_nothing(svc):
    cus, charge, sub, before = setup_customer(svc)
    # A 500 is retried by the client (same idempotency key); when Stripe keeps failing: 503.
    svc.fake.fail_next.extend([("POST", "/v1/refunds", StripeError(500, "api_error", "Something went wrong"))] * 6)
    status, body = svc.admin("POST", f"/payments/{charge['id']}/refund", {"amount": 100})
    assert status == 503, body
    keys = {w["idempotency_key"] for w in svc.fake.writes("/v1/refunds")}
    assert len(keys) == 1, keys
    svc.fake.fail_next.clear()
    svc.fake.fail_next.append(("POST", "/v1/refunds", StripeError(
        402, "card_error", "Your card was declined.", "card_declined")))
    status, body = svc.admin("POST", f"/payments/{charge['id']}/refund", {"amount": 100})
    assert 400 <= status < 500 and "declined" in body["error"], (status, body)
    after = svc.profile(cus["id"], ACCT)
    assert after["payments"] == before["payments"]
    status, _ = svc.admin("POST", "/payments/ch_BBnope/refund", {})
    assert status == 404


def test_pause_resume_cancel_at_period_end_then_cancel_now(svc):
    cus, charge, sub, before = setup_customer(svc)
    sid = sub["id"]

    status, body = svc.admin("POST", f"/subscriptions/{sid}/pause", {"behavior": "void"})
    assert status == 202, body
    assert body["subscription"]["pause_collection"]["behavior"] == "void"
    write = svc.fake.writes(f"/v1/subscriptions/{sid}")[-1]
    assert write["params"]["pause_collection"] == {"behavior": "void"} and write["account"] == ACCT
    svc.settle()
    check_subscription(svc.fake, ACCT, svc.profile(cus["id"], ACCT)["subscriptions"][0])

    status, body = svc.admin("POST", f"/subscriptions/{sid}/resume")
    assert status == 202, body
    assert body["subscription"]["pause_collection"] is None
    assert svc.fake.writes(f"/v1/subscriptions/{sid}")[-1]["params"] == {"pause_collection": ""}
    svc.settle()
    check_subscription(svc.fake, ACCT, svc.profile(cus["id"], ACCT)["subscriptions"][0])

    status, body = svc.admin("POST", f"/subscriptions/{sid}/cancel", {"at_period_end": True})
    assert status == 202 and body["subscription"]["cancel_at_period_end"] is True, body
    svc.settle()
    check_subscription(svc.fake, ACCT, svc.profile(cus["id"], ACCT)["subscriptions"][0])

    status, body = svc.admin("POST", f"/subscriptions/{sid}/cancel", {"at_period_end": False})
    assert status == 202 and body["subscription"]["status"] == "canceled", body
    assert svc.fake.writes(f"/v1/subscriptions/{sid}")[-1]["method"] == "DELETE"
    svc.settle()
    profile = svc.profile(cus["id"], ACCT)
    check_subscription(svc.fake, ACCT, profile["subscriptions"][0])
    # Rule 2: no refund, no revoke.
    assert enrollments(profile) == enrollments(before)
    assert all(p["refunds"] == [] and p["amount_refunded"] == 0 for p in profile["payments"])
    assert not svc.fake.writes("/v1/refunds")

    writes = len(svc.fake.writes())
    status, body = svc.admin("POST", f"/subscriptions/{sid}/cancel", {"at_period_end": False})
    assert status == 409, body
    assert len(svc.fake.writes()) == writes
    assert svc.admin("POST", f"/subscriptions/{sid}/pause", {"behavior": "sometimes"})[0] == 400
    assert svc.admin("POST", "/subscriptions/sub_BBnope/pause", {"behavior": "void"})[0] == 404


def test_patch_customer_goes_to_stripe_and_back(svc):
    cus, charge, sub, before = setup_customer(svc)
    cid = before["id"]
    status, body = svc.admin("PATCH", f"/customers/{cid}", {"name": "Ada King", "email": "ada.king@example.com"})
    assert status == 200, body
    assert (body["name"], body["email"]) == ("Ada King", "ada.king@example.com")
    [write] = svc.fake.writes(f"/v1/customers/{cus['id']}")
    assert write["account"] == ACCT and write["params"] == {"name": "Ada King", "email": "ada.king@example.com"}
    svc.settle()
    status, found = svc.admin("GET", "/customers?q=ADA.KING")
    assert status == 200 and [c["id"] for c in found["customers"]] == [cid]
    assert svc.admin("PATCH", f"/customers/{cid}", {"email": "not an email"})[0] == 400
    assert svc.admin("PATCH", f"/customers/{cid}", {"nickname": "x"})[0] == 400
    assert svc.admin("PATCH", "/customers/00000000-0000-0000-0000-000000000000", {"name": "x"})[0] == 404
    assert svc.admin("DELETE", f"/customers/{cid}")[0] == 405
    assert len(svc.fake.writes()) == 1

    # Revoke / grant: local only; refunds and subscriptions untouched (docs/rules.md, rule 3).
    status, body = svc.admin("POST", f"/customers/{cid}/courses/course_math/revoke")
    assert status == 200 and body["enrollment"]["access"] == "revoked", body
    status, body = svc.admin("POST", f"/customers/{cid}/courses/course_math/grant")
    assert status == 200 and body["enrollment"]["access"] == "active", body
    assert len(svc.fake.writes()) == 1
    status, links = svc.admin("GET", f"/customers/{cid}/links")
    assert status == 200
    assert links["login"] == f"https://courses.example/login?customer={cid}"
    assert links["billing"] == links["login"].replace("login", "billing")


def test_idempotency_key_replays_a_default_refund(svc):
    """No amount: the first refund takes what is left; its retry must not compute a new amount."""
    cus, charge, sub, before = setup_customer(svc)
    first = svc.admin("POST", f"/payments/{charge['id']}/refund", {}, headers={"Idempotency-Key": "bb-all"})
    assert first[0] == 202, first
    assert svc.admin("POST", f"/payments/{charge['id']}/refund", {}, headers={"Idempotency-Key": "bb-all"}) == first
    assert len(svc.fake.writes("/v1/refunds")) == 1
