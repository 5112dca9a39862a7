"""Smoke: real fixture events through the whole path (signed POST → ledger → worker → profile)."""
from tests.support import load_fixture

SESSION = "events/supabase_stripe-sync-engine__packages__fastify-app__src__test__stripe__checkout_session_completed.json"


def test_checkout_session_creates_customer(deliver, run_worker, admin):
    event = load_fixture(SESSION)
    event["data"]["object"]["metadata"] = {"course_id": "course_42"}
    assert deliver(event).get_json() == {"received": True}
    run_worker()
    status, body = admin("GET", f"/events/{event['id']}")
    assert body["status"] == "processed", body
    cus = event["data"]["object"]["customer"]
    status, profile = admin("GET", f"/stripe-customers/{cus}")
    assert status == 200, profile
    assert [e["course_id"] for e in profile["enrollments"]] == ["course_42"]
    assert profile["activity"]
