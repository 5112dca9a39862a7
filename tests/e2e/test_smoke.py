"""Smoke: a real fixture event through the whole path (signed POST → ledger → worker → profile)."""
from tests.support import load_fixture

SESSION = "events/supabase_stripe-sync-engine__packages__fastify-app__src__test__stripe__checkout_session_completed.json"


def test_checkout_session_creates_customer_payment_enrollment_and_activity(deliver, run_worker, admin):
    event = load_fixture(SESSION)
    event["data"]["object"]["metadata"] = {"course_id": "course_42"}
    session = event["data"]["object"]
    assert deliver(event).get_json() == {"received": True}
    run_worker()
    status, body = admin("GET", f"/events/{event['id']}")
    assert (status, body["status"], body["attempts"]) == (200, "processed", 1), body

    status, profile = admin("GET", f"/stripe-customers/{session['customer']}")

    assert status == 200, profile
    assert (profile["account"], profile["stripe_customer_id"], profile["name"], profile["email"],
            profile["deleted_in_stripe"]) == (None, "cus_IhGfebO16cMIGN", "Copple", "billz@supabase.io", False)
    [enrollment] = profile["enrollments"]
    assert (enrollment["course_id"], enrollment["access"], enrollment["revoked_at"]) == ("course_42", "active", None)
    [payment] = profile["payments"]
    assert {k: payment[k] for k in ("stripe_payment_intent_id", "stripe_invoice_id", "stripe_subscription_id",
                                    "course_id", "amount", "currency", "amount_refunded", "status", "refunds")} == {
        "stripe_payment_intent_id": session["payment_intent"], "stripe_invoice_id": session["invoice"],
        "stripe_subscription_id": None, "course_id": "course_42", "amount": 999, "currency": "eur",
        "amount_refunded": 0, "status": "succeeded", "refunds": []}
    assert profile["subscriptions"] == []
    # Rule 9: every change says what changed and which Stripe event did it.
    assert profile["activity"] and {(a["origin"], a["stripe_event_id"]) for a in profile["activity"]} == {
        ("stripe", event["id"])}
    kinds = {a["kind"] for a in profile["activity"]}
    assert any(k.startswith("customer") for k in kinds) and any(k.startswith("enrollment") for k in kinds), kinds
    assert any(k.startswith("payment") for k in kinds), kinds
