"""A worker survives Redis outages of any length, busy or idle: it waits, logs once, reconnects, and
applies the event that was in flight and every event delivered meanwhile and afterwards.

A real `teachery-sync worker` process reaches Redis through tests/tcp_proxy.py; the test cuts the proxy
for longer than RQ's own timeouts (the worker's TTL of 25 s, its 20 s socket timeout, the 10 s dequeue
wait): once while the worker is busy applying an event (the Stripe API holds the customer it fetches),
and once while it is idle, with connections hanging rather than refused.
"""
from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import pytest

from tests.support import TEST_REDIS_URL, load_fixture
from tests.tcp_proxy import TcpProxy
from tests.worker_processes import kill_group, start_worker, wait_for

OUTAGE_SECONDS = 32
CUSTOMER_UPDATED = "events/supabase_stripe-sync-engine__packages__fastify-app__src__test__stripe__customer_updated.json"
IN_FLIGHT = {
    "id": "evt_outage_in_flight", "object": "event", "type": "customer.subscription.created", "created": 1700000000,
    "data": {"object": {"id": "sub_OUT1", "object": "subscription", "customer": "cus_OUT1", "status": "active",
                        "metadata": {"course_id": "course_out"}}},
}


def _event(event_id: str, n: int) -> dict:
    event = load_fixture(CUSTOMER_UPDATED)
    event["id"] = f"{event_id}_{n}"
    event["data"]["object"]["id"] = f"cus_OUTAGE{n}"
    return event


def _records(logged: str) -> list[dict]:
    """The worker's log lines (JSON, the default LOG_FORMAT) as dicts."""
    return [json.loads(line) for line in logged.splitlines() if line.startswith("{")]


def _outage_then_more_events(proxy, deliver, applied, *, hang: bool, n: int) -> None:
    """An outage (begun by the caller, or here with `hang`) of OUTAGE_SECONDS, with an event delivered
    during it and one after it: both applied soon after Redis is back, by the same worker."""
    if hang:
        proxy.cut(hang=True)
    during = _event("evt_outage_during", n)
    assert deliver(during).status_code == 200  # the receiver's own Redis is up
    time.sleep(OUTAGE_SECONDS)
    proxy.restore()
    assert applied(during["id"], 30)
    after = _event("evt_outage_after", n)
    assert deliver(after).status_code == 200
    assert applied(after["id"], 10)


@pytest.mark.slow  # a minute or half of one: `make test-all`
def test_the_worker_waits_out_redis_outages_busy_and_idle(deliver, admin, tmp_path, stripe_api):
    url = urlsplit(TEST_REDIS_URL)
    stripe_api.put({"id": "cus_OUT1", "object": "customer", "name": "Otto", "email": "otto@example.com",
                    "created": 1700000000})
    stripe = stripe_api.hold("/v1/customers/cus_OUT1")
    log_path = tmp_path / "worker.log"

    def applied(event_id: str, timeout: float) -> bool:
        done = wait_for(lambda: admin("GET", f"/events/{event_id}")[1]["status"] == "processed", timeout)
        assert done and worker.poll() is None, log_path.read_text()
        return True

    with TcpProxy(url.port or 6379, url.hostname) as proxy:
        worker = start_worker(log_path, stripe_url=stripe_api.url,
                              redis_url=f"redis://{url.hostname}:{proxy.port}{url.path or '/0'}")
        try:
            # Busy: the worker is applying an event when Redis goes; the event commits meanwhile.
            assert deliver(IN_FLIGHT).status_code == 200
            assert stripe.asked.wait(30), log_path.read_text()
            proxy.cut()
            stripe.release()
            assert applied(IN_FLIGHT["id"], 20)
            _outage_then_more_events(proxy, deliver, applied, hang=False, n=1)
            # Idle: connections hang instead of being refused.
            time.sleep(1)
            _outage_then_more_events(proxy, deliver, applied, hang=True, n=2)
        finally:
            kill_group(worker)
            stripe.release()
    logged = log_path.read_text()
    lines = lambda text, worker: [line for line in _records(logged)  # noqa: E731
                                  if text in line.get("event", "") and line.get("worker") == worker]
    # Once per outage and process: the event worker, and the reconciliation worker it supervises.
    assert len(lines("Redis unreachable", "teachery-events")) == 2, logged
    assert len(lines("Redis reachable again", "teachery-events")) == 2, logged
    assert len(lines("Redis unreachable", "teachery-reconciliations")) <= 2, logged
    assert "quitting" not in logged and "Traceback" not in logged, logged
