"""The console's Events pages through the Flask app: filters, keyset pages, bad filter values, an event's
page, Replay and Replay all failed (the same replay as the API's), the header's counts, and Health."""
from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest

from domain import ledger
from tests.integration.test_console_session import csrf_of, sign_in
from tests.stripe_events import T0, customer, event

ACCT = "acct_1ConsoleEvents"


@pytest.fixture
def signed(client):
    sign_in(client)
    return client


def _store(services, events: list[dict]) -> None:
    with services.pool.connection() as conn:
        ledger.record_events(conn, [(e, None) for e in events])


def _set(services, sql: str, params: dict | None = None) -> None:
    with services.pool.connection() as conn:
        conn.execute(sql, params)


def _ids(page: bytes) -> list[str]:
    """The event ids a list page shows, in order."""
    return re.findall(r'<a href="/admin/events/([^"]+)"><code class="id">', page.decode())


def _older(page: bytes) -> str | None:
    found = re.search(rb'<a href="([^"]+)" rel="next">', page)
    return html.unescape(found.group(1).decode()) if found else None


def _plain(n: int, type_: str = "customer.updated", account: str | None = None) -> dict:
    return {"id": f"evt_list_{type_.replace('.', '_')}_{account or 'p'}_{n:04d}", "object": "event",
            "type": type_, "created": T0 + n, "data": {"object": {"id": f"obj_{n}", "object": "thing"}},
            **({"account": account} if account else {})}


def test_the_list_filters_by_status_type_account_and_time(services, signed):
    _store(services, [_plain(i) for i in range(3)] + [_plain(i, "charge.refunded") for i in range(2)]
           + [_plain(i, "invoice.paid", ACCT) for i in range(2)])
    _set(services, "UPDATE events SET status = 'failed' WHERE id = %(id)s", {"id": _plain(1)["id"]})
    _set(services, "UPDATE events SET received_at = now() - interval '3 days' WHERE type = 'charge.refunded'")

    def shown(query: str) -> set[str]:
        r = signed.get("/admin/events?" + query)
        assert r.status_code == 200, r.data
        return set(_ids(r.data))

    assert len(shown("")) == 7
    assert shown("status=failed") == {_plain(1)["id"]}
    assert shown("type=charge.refunded") == {_plain(i, "charge.refunded")["id"] for i in range(2)}
    assert shown(f"account={ACCT}") == {_plain(i, "invoice.paid", ACCT)["id"] for i in range(2)}
    assert len(shown("account=platform")) == 5
    two_days_ago = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    assert shown(f"to={two_days_ago}") == {_plain(i, "charge.refunded")["id"] for i in range(2)}
    assert len(shown(f"from={two_days_ago}")) == 5
    assert shown(f"from={two_days_ago}&status=failed&type=customer.updated&account=platform") == {_plain(1)["id"]}
    assert shown("type=none.such") == set()
    page = signed.get("/admin/events?type=none.such").data
    assert b"No event matches" in page and b'value="none.such"' in page  # the form keeps what was asked


def test_keyset_pages_cover_every_event_once_newest_first_even_within_one_instant(services, signed):
    # One statement: all 120 share one received_at, so the pages are told apart by id alone.
    _store(services, [_plain(i) for i in range(120)])
    _set(services, "UPDATE events SET received_at = received_at - interval '1 hour' WHERE id < %(id)s",
         {"id": _plain(30)["id"]})  # 30 older ones: the order is received_at first
    seen, path, pages = [], "/admin/events?type=customer.updated", 0
    while path:
        r = signed.get(path)
        assert r.status_code == 200
        assert "OFFSET" not in path
        seen += _ids(r.data)
        path, pages = _older(r.data), pages + 1
        if path:
            assert "type=customer.updated" in path and "before=" in path and "before_id=" in path
    assert pages == 3
    newest_first = sorted((_plain(i)["id"] for i in range(30, 120)), reverse=True) + \
        sorted((_plain(i)["id"] for i in range(30)), reverse=True)
    assert seen == newest_first


@pytest.mark.parametrize(("query", "message"), [
    ("status=bogus", "Status must be one of"),
    ("status=processing", "Status must be one of"),
    ("account=nope", "Account must be an acct_… id or “platform”"),
    ("from=yesterday", "“From” must be a date and time"),
    ("to=2026-13-45T99:00", "“To” must be a date and time"),
    ("from=2026-12-02T10:00&to=2026-12-01T10:00", "“From” must be earlier than “To”"),
    ("before=not-a-time&before_id=evt_1", "That “Older” link is damaged"),
    ("before=2026-12-02T10:00:00&before_id=evt_1", "That “Older” link is damaged"),  # no time zone
    ("before_id=evt_1", "That “Older” link is damaged"),
    ("type=" + "x" * 201, "Type is too long"),
])
def test_a_bad_filter_value_gets_the_form_again_with_a_clear_message(services, signed, query, message):
    r = signed.get("/admin/events?" + query)
    assert r.status_code == 400
    assert message in r.data.decode()
    assert b'<form method="get"' in r.data and b"<table>" not in r.data


def _waiting(services, deliver, run_worker) -> str:
    e = {"id": "evt_console_wait", "object": "event", "type": "customer.subscription.updated", "created": T0,
         "data": {"object": {"id": "sub_CW1", "object": "subscription", "customer": "cus_unknown_CW1",
                             "status": "active"}}}
    deliver(e)
    run_worker()  # the customer cannot be fetched: waiting, with an error and a next attempt time
    return e["id"]


def test_an_events_page_shows_its_state_attempts_and_payload(services, signed, deliver, run_worker):
    event_id = _waiting(services, deliver, run_worker)
    page = signed.get(f"/admin/events/{event_id}").data.decode()
    assert "customer.subscription.updated" in page and "waiting" in page
    assert "cus_unknown_CW1" in page  # the last error, and the attempts log
    assert re.search(r"<td[^>]*>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</td><td>automatic</td>", page)
    assert "Next automatic attempt</th><td>20" in page
    assert '&#34;customer&#34;: &#34;cus_unknown_CW1&#34;' in page  # pretty-printed, escaped
    assert "Replay this event" in page


def test_an_events_page_links_the_customers_it_changed(services, signed, send):
    created = event("customer.created", customer("cus_CE1", email="ce@example.com", name="Cee"), created=T0)
    send(created)
    with services.pool.connection() as conn:
        customer_id = conn.execute("SELECT id FROM customers WHERE stripe_customer_id = 'cus_CE1'").fetchone()[0]
    page = signed.get(f"/admin/events/{created['id']}").data.decode()
    assert f'href="/admin/customers/{customer_id}"' in page
    assert "None: " not in page


def test_an_unknown_event_is_a_404_page(signed):
    r = signed.get("/admin/events/evt_not_there", headers={"Accept": "text/html"})
    assert r.status_code == 404 and b"not in the ledger" in r.data and b"<html" in r.data
    page = signed.get("/admin/events").data
    r = signed.post("/admin/events/evt_not_there/replay", data={"csrf_token": csrf_of(page)},
                    headers={"Accept": "text/html"})
    assert r.status_code == 404


def test_replay_queues_the_apis_replay_and_a_second_merges(services, signed, deliver, run_worker):
    event_id = _waiting(services, deliver, run_worker)
    page = signed.get(f"/admin/events/{event_id}").data
    assert signed.post(f"/admin/events/{event_id}/replay").status_code == 400  # no CSRF token: refused
    assert services.queue.count == 0
    r = signed.post(f"/admin/events/{event_id}/replay", data={"csrf_token": csrf_of(page)})
    assert r.status_code == 302 and r.headers["Location"] == f"/admin/events/{event_id}"
    assert b"Replay queued" in signed.get(r.headers["Location"]).data
    r = signed.post(f"/admin/events/{event_id}/replay", data={"csrf_token": csrf_of(page)})
    assert b"merged into it" in signed.get(r.headers["Location"]).data
    assert services.queue.count == 1
    run_worker()
    with services.pool.connection() as conn:
        log = ledger.attempts_log(conn, event_id)
        shown = ledger.get_event(conn, event_id)
    assert [a["kind"] for a in log] == ["automatic", "replay"]
    assert shown.status == "waiting" and shown.scheduled_attempts == 1  # the schedule is kept
    assert "<td>replay</td>" in signed.get(f"/admin/events/{event_id}").data.decode()


def test_replay_all_failed_shows_the_count_then_replays_them_all(services, signed, run_worker):
    _store(services, [_plain(i) for i in range(4)])
    _set(services, "UPDATE events SET status = 'processed'")
    failed = [_plain(0)["id"], _plain(2)["id"]]
    _set(services, "UPDATE events SET status = 'failed', last_error = 'boom' WHERE id = ANY(%(ids)s)", {"ids": failed})
    page = signed.get("/admin/events/replay-failed").data.decode()
    assert "<strong>2</strong> events failed" in page and "Replay 2 failed events" in page
    assert 'data-confirm="Replay all 2 failed event(s)?' in page
    token = csrf_of(page.encode())
    r = signed.post("/admin/events/replay-failed", data={"csrf_token": token, "expected": "3"})  # a stale count
    assert b"nothing was replayed" in signed.get(r.headers["Location"]).data
    assert services.queue.count == 0
    r = signed.post("/admin/events/replay-failed", data={"csrf_token": token, "expected": "2"})
    assert r.headers["Location"] == "/admin/events?status=failed"
    assert b"Queued 2 failed event(s) for replay" in signed.get(r.headers["Location"]).data
    assert sorted(job.args[0] for job in services.queue.jobs) == sorted(failed)
    r = signed.post("/admin/events/replay-failed", data={"csrf_token": token, "expected": "2"})
    assert b"Queued 0 failed event(s) for replay; 2 already had a replay queued" in signed.get(r.headers["Location"]).data
    run_worker()
    with services.pool.connection() as conn:
        assert [ledger.get_event(conn, i).status for i in failed] == ["processed", "processed"]
    page = signed.get("/admin/events/replay-failed").data
    assert b"No event has failed" in page and b"<button type=\"submit\">Replay" not in page



@pytest.mark.parametrize("expected", ["\u00b2", "\u0661", "9" * 5000, "1.0", " 1"])
def test_replay_all_failed_takes_the_confirmed_count_in_ascii_digits_only(services, signed, expected):
    """A superscript digit or 5,000 digits answered 500 (str.isdigit takes them, int() does not); an Arabic-Indic
    one was read as 1: each is a count the page never showed, so nothing is queued."""
    _store(services, [_plain(0)])
    _set(services, "UPDATE events SET status = 'failed'")
    token = csrf_of(signed.get("/admin/events/replay-failed").data)
    r = signed.post("/admin/events/replay-failed", data={"csrf_token": token, "expected": expected})
    assert r.status_code == 302, (expected, r.status_code)
    assert b"nothing was replayed" in signed.get(r.headers["Location"]).data
    assert services.queue.count == 0

def test_the_header_links_its_counts_to_the_filtered_ledger(services, signed):
    _store(services, [_plain(i) for i in range(3)])
    _set(services, "UPDATE events SET status = 'failed' WHERE id = %(id)s", {"id": _plain(0)["id"]})
    _set(services, "UPDATE events SET status = 'waiting' WHERE id <> %(id)s", {"id": _plain(0)["id"]})
    page = signed.get("/admin/health").data.decode()
    assert re.search(r'href="/admin/events\?status=failed"[^>]*>1 failed</a>', page)
    assert re.search(r'href="/admin/events\?status=waiting"[^>]*>2 waiting</a>', page)


def test_health_shows_the_figures_and_a_chart_with_its_text(services, signed, deliver, run_worker):
    _waiting(services, deliver, run_worker)
    _store(services, [_plain(i) for i in range(5)])
    _set(services, "UPDATE events SET status = 'processed', processed_at = now() WHERE type = 'customer.updated'")
    page = signed.get("/admin/health").data.decode()
    assert '<svg class="chart"' in page and 'role="img"' in page
    assert "6 received and 5 applied" in page  # the chart's text alternative
    assert "jobs waiting in <code>teachery-events</code>" in page
    assert "No worker is alive" in page  # the test's worker runs in bursts
    assert "No reconciliation has run yet" in page
    r = signed.get("/admin/health?hours=1000")
    assert r.status_code == 200 and b"Hours must be one of 1, 3, 6, 12, 24" in r.data


def test_per_minute_counts_each_minute_and_fills_quiet_ones(services):
    _store(services, [_plain(i) for i in range(3)])
    _set(services, "UPDATE events SET received_at = date_trunc('minute', now()) - interval '5 minutes', "
                   "processed_at = date_trunc('minute', now()) - interval '4 minutes' WHERE id = %(id)s",
         {"id": _plain(0)["id"]})
    with services.pool.connection() as conn:
        minutes = ledger.per_minute(conn, 10)
    assert len(minutes) == 10
    assert [(m["received"], m["applied"]) for m in minutes][-6:] == [(1, 0), (0, 1), (0, 0), (0, 0), (0, 0), (2, 0)]


def test_rq_dashboard_pages_and_data_answer_behind_the_sign_in(services, client, deliver, run_worker):
    assert client.get("/admin/rq/0/data/queues.json").status_code == 302  # signed out: the sign-in first
    _waiting(services, deliver, run_worker)
    with services.pool.connection() as conn:  # the retries run out: the job lands in RQ's failed registry
        conn.execute("UPDATE events SET scheduled_attempts = 9, next_attempt_at = now() - interval '1 second'")
    from workers.worker import sweep_stranded

    assert sweep_stranded(services) == 1
    run_worker()
    assert services.queue.failed_job_registry.count == 1
    sign_in(client)
    for path in ("/admin/rq/", "/admin/rq/0/view/workers", "/admin/rq/0/view/jobs",
                 "/admin/rq/0/view/jobs/teachery-events/failed/8/asc/1"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert b"https://cdn" not in r.data and b"//cdn." not in r.data, path
    queues = client.get("/admin/rq/0/data/queues.json").get_json()
    assert "teachery-events" in {q["name"] for q in queues["queues"]}
    failed = client.get("/admin/rq/0/data/jobs/teachery-events/failed/8/asc/1.json").get_json()
    assert len(failed["jobs"]) == 1 and "evt_console_wait" in failed["jobs"][0]["id"]
    assert client.get("/admin/rq/0/data/workers.json").status_code == 200
