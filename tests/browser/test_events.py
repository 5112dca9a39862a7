"""The Events pages in a real browser: a failed event found from the header and replayed, Replay all
failed (the count first, then a confirmation), and the Health page."""
from __future__ import annotations

import itertools
import time

import psycopg

from tests.browser.conftest import DATABASE_URL
from workers.queueing import RETRY_INTERVALS

# RQ keeps job ids (failed ones for 30 days): each test has events of its own
_runs = itertools.count(int(time.time()))


def _subscription_event(n: int, run: int) -> dict:
    """An event about a customer the fake Stripe does not have (cus_BF<n>): it waits for that customer."""
    return {"id": f"evt_browser_fail_{run}_{n}", "object": "event", "type": "customer.subscription.updated",
            "created": 1_735_689_600 + n,
            "data": {"object": {"id": f"sub_BF{n}", "object": "subscription", "customer": f"cus_BF{n}",
                                "status": "active", "items": {"data": []}, "metadata": {}}}}


def _status(svc, event_id: str) -> str:
    status, body = svc.admin("GET", f"/events/{event_id}")
    assert status == 200, body
    return body["status"]


def _wait_status(svc, event_ids: list[str], wanted: str, timeout: float = 40) -> None:
    deadline = time.time() + timeout
    while {_status(svc, i) for i in event_ids} != {wanted}:
        assert time.time() < deadline, {i: _status(svc, i) for i in event_ids}
        time.sleep(0.3)


def failed_events(svc, count: int) -> list[str]:
    """Events that failed for good, through the real worker: each waits for its customer, then (the retry
    schedule fast-forwarded to its last attempt) the worker's sweep tries once more and gives up."""
    run = next(_runs)
    events = [_subscription_event(n, run) for n in range(count)]
    svc.deliver(events)
    ids = [e["id"] for e in events]
    _wait_status(svc, ids, "waiting")
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute("UPDATE events SET scheduled_attempts = %s, next_attempt_at = now() WHERE id = ANY(%s)",
                      (len(RETRY_INTERVALS), ids))
    _wait_status(svc, ids, "failed")
    return ids


def test_replay_a_failed_event_found_from_the_header(signed_in, svc):
    [event_id] = failed_events(svc, 1)
    console = signed_in
    console.open("/admin/events")
    console.screenshot("events")
    console.click("nav a.badge.bad")  # the header's "1 failed"
    assert console.path == "/admin/events?status=failed"
    assert console.find_all("tbody tr a code.id")[0].text == event_id
    assert console.no_horizontal_scroll()
    console.screenshot("events-filtered")
    console.click(f"a[href='/admin/events/{event_id}']")
    console.wait_for_text("gave up after")
    console.screenshot("event")
    svc.fake.create_customer(None, "Bea Failed", "bea@example.com", cus_id="cus_BF0")  # the cause, fixed
    console.click("form[action$='/replay'] button")
    console.wait_for_text("Replay queued")
    _wait_status(svc, [event_id], "processed")
    console.wait_until(lambda c: "processed" in c.text("table.facts"), reload=True)
    assert "replay" in console.text("section[aria-labelledby=attempts-h]")
    console.open("/admin/health")
    console.find("svg.chart")
    assert console.no_horizontal_scroll()
    console.screenshot("health")


def test_replay_all_failed_shows_the_count_then_asks(signed_in, svc):
    ids = failed_events(svc, 2)
    for n in range(2):
        svc.fake.create_customer(None, f"Bee {n}", f"bee{n}@example.com", cus_id=f"cus_BF{n}")
    console = signed_in
    console.open("/admin/events")
    console.click("a[href='/admin/events/replay-failed']")
    console.wait_for_text("2 events failed")
    assert console.no_horizontal_scroll()
    console.screenshot("replay-failed")
    console.click("form[action$='/replay-failed'] button")
    asked = console.accept_confirmation()
    assert "Replay all 2 failed event(s)?" in asked
    console.wait_for_text("Queued 2 failed event(s) for replay")
    _wait_status(svc, ids, "processed")
    console.open("/admin/events/replay-failed")
    console.wait_for_text("No event has failed")


def test_rq_dashboard_signed_out_asks_for_the_sign_in_first(console, svc):
    ids = failed_events(svc, 1)  # a job in RQ's failed registry
    console.open("/admin/rq/")
    assert console.path.startswith("/admin/sign-in?next=/admin/rq/")
    console.fill({"token": console.token})  # on the page it was sent to: back to the dashboard after
    console.click("form button[type=submit]")
    console.wait_until(lambda c: c.path.startswith("/admin/rq/"))
    console.wait_for_text("teachery-events", css="body")
    console.screenshot("rq")
    own = svc.url.rstrip("/")
    loaded = console.driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and all(url.startswith(own) for url in loaded), loaded  # nothing from a CDN
    console.open("/admin/rq/0/view/workers")
    console.wait_until(lambda c: "rq:worker" in c.text("body") or "teachery" in c.text("body").lower())
    console.screenshot("rq-workers")
    console.open("/admin/rq/0/view/jobs/teachery-events/failed/8/asc/1")
    console.wait_for_text(ids[0], css="body")
    console.screenshot("rq-failed")
