"""A worker killed mid-event loses nothing: the next worker applies the event.

A real `teachery-sync worker` process takes an event whose customer it must fetch from the Stripe
API; the fake API holds the request (tests/fake_stripe), the worker is killed with SIGKILL while applying the event
(its transaction rolls back), and a new `teachery-sync worker --burst` applies it.
"""
import os
import signal
import subprocess
import sys

from tests.support import ROOT, TEST_DATABASE_URL, TEST_REDIS_URL

EVENT = {
    "id": "evt_killed_1", "object": "event", "type": "customer.subscription.created", "created": 1700000000,
    "data": {"object": {"id": "sub_K1", "object": "subscription", "customer": "cus_K1", "status": "active",
                        "metadata": {"course_id": "course_k"}}},
}


def _worker(stripe_url: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": TEST_DATABASE_URL, "REDIS_URL": TEST_REDIS_URL,
           "STRIPE_API_KEY": "sk_test_killed", "STRIPE_API_BASE": stripe_url}
    return subprocess.Popen([sys.executable, "-m", "teachery_sync.cli", "worker", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_sigkill_mid_event_then_a_new_worker_applies_it(deliver, admin, stripe_api):
    stripe_api.put({"id": "cus_K1", "object": "customer", "name": "Kay", "email": "kay@example.com",
                    "created": 1700000000})
    held = stripe_api.hold("/v1/customers/cus_K1")
    try:
        assert deliver(EVENT).status_code == 200
        first = _worker(stripe_api.url)
        assert held.asked.wait(30), "the worker never asked Stripe for the customer"
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert admin("GET", "/events/evt_killed_1")[1]["status"] == "received"  # rolled back, not lost

        held.release()
        second = _worker(stripe_api.url, "--burst")
        assert second.wait(60) == 0
        status, event = admin("GET", "/events/evt_killed_1")
        assert event["status"] == "processed", event
        status, profile = admin("GET", "/stripe-customers/cus_K1")
        assert status == 200 and profile["name"] == "Kay"
        assert [s["stripe_subscription_id"] for s in profile["subscriptions"]] == ["sub_K1"]
    finally:
        held.release()
