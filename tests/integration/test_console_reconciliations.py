"""The console's reconciliation pages through the Flask app: the start form's rules (the API's own), a run's
page while queued, running and finished, its drift table and "Fix this drift", and the list of runs."""
from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime

import pytest

from domain import reconciliation_drift as drift_rows
from domain import reconciliations
from domain.reconciliations import MAX_QUEUED_RUNS, Scope
from teachery_sync.bootstrap import build
from tests.e2e.test_reconciliation import CUS, SUB, drift_in_stripe, in_sync
from tests.integration.test_console_session import csrf_of, sign_in

NO_RUN = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def console(client):
    sign_in(client)
    return client


def start(client, **form):
    page = client.get("/admin/reconciliations")
    return client.post("/admin/reconciliations", data={"csrf_token": csrf_of(page.data), **form})


def post(client, path: str, page: str | None = None):
    form = client.get(page or "/admin/reconciliations")
    return client.post(path, data={"csrf_token": csrf_of(form.data)})


def all_runs(services):
    with services.pool.connection() as conn:
        return reconciliations.recent(conn, limit=500)


def text(response) -> str:
    """The page's words, without tags and with spaces collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


def run_id_of(response) -> str:
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"].rsplit("/", 1)[1]


# --- the start form -------------------------------------------------------------------------------

def test_a_dry_run_started_from_the_form_is_queued_with_its_scope(console, services):
    r = start(console, account="acct_1Console", customer="cus_Console1", since="2026-11-01", mode="dry_run")
    run_id = run_id_of(r)
    [run] = all_runs(services)
    assert (run.id, run.status, run.dry_run, run.account, run.customer, run.trigger) == (
        run_id, "queued", True, "acct_1Console", "cus_Console1", "admin")
    assert run.since == datetime(2026, 11, 1, tzinfo=UTC)
    assert services.redis.exists(f"rq:job:reconciliation-{run_id}")
    page = console.get(f"/admin/reconciliations/{run_id}")
    assert page.status_code == 200
    words = text(page)
    assert "Dry run queued: it changes nothing" in words and "Queued: waiting for a worker" in words
    assert f'hx-get="/admin/reconciliations/{run_id}/progress"' in page.get_data(as_text=True)
    assert "acct_1Console, customer cus_Console1, objects created since 2026-11-01 00:00:00 UTC" in words


@pytest.mark.parametrize(("form", "says"), [
    ({"account": "nope"}, "account"),
    ({"account": "acct_<script>"}, "account"),
    ({"customer": "acct_1Wrong"}, "customer"),
    ({"since": "soon"}, "Created since"),
    ({"since": "2026-13-45"}, "Created since"),
    ({"since": "2026-11-01T00:00:00Z"}, "Created since"),
    ({"mode": "sometimes"}, "Choose a dry run"),
    ({"mode": "fix"}, "Tick the box"),
])
def test_a_bad_form_is_shown_again_with_a_message_and_starts_nothing(console, services, form, says):
    r = start(console, **{"mode": "dry_run", **form})
    assert r.status_code == 400
    problem = re.search(r'id="start-problem">(.*?)</p>', r.get_data(as_text=True), re.S).group(1)
    assert says in problem, problem
    assert "<script>" not in r.get_data(as_text=True).split("<main", 1)[1]
    for name, value in form.items():
        if name in ("account", "customer", "since"):
            assert f'value="{value}"'.replace("<", "&lt;").replace(">", "&gt;") in r.get_data(as_text=True)
    assert all_runs(services) == []


def test_a_fixing_run_needs_the_box_ticked(console, services):
    r = start(console, mode="fix", confirm_fix="yes", account="acct_1Console")
    run_id = run_id_of(r)
    [run] = all_runs(services)
    assert (run.id, run.dry_run) == (run_id, False)
    assert "Fixing run queued" in text(console.get(f"/admin/reconciliations/{run_id}"))


def test_a_busy_scope_points_to_the_run_already_queued(console, services):
    first = run_id_of(start(console, mode="dry_run", account="acct_1Busy"))
    r = start(console, mode="dry_run", account="acct_1Busy")
    assert r.status_code == 409
    assert "already queued or running" in text(r)
    assert f'href="/admin/reconciliations/{first}"' in r.get_data(as_text=True)
    assert run_id_of(start(console, mode="fix", confirm_fix="yes", account="acct_1Busy"))  # another scope
    assert len(all_runs(services)) == 2


def test_too_many_queued_runs_are_refused_with_a_message(console, services):
    with services.pool.connection() as conn:
        for day in range(MAX_QUEUED_RUNS):
            reconciliations.create(conn, Scope(since=datetime(2026, 1, day + 1, tzinfo=UTC)), True)
    r = start(console, mode="dry_run")
    assert r.status_code == 429 and "Too many reconciliation runs are queued" in text(r)
    assert len(all_runs(services)) == MAX_QUEUED_RUNS


def test_redis_down_says_so_and_leaves_the_run_failed(settings, services):
    from webhooks.app import create_app

    no_redis = build(dataclasses.replace(settings, redis_url="redis://127.0.0.1:9/0"), web=True).open()
    try:
        app = create_app(services=no_redis)
        app.config["TESTING"] = True
        client = app.test_client()
        sign_in(client)
        r = start(client, mode="dry_run")
    finally:
        no_redis.close()
    assert r.status_code == 503 and "Redis did not answer" in text(r)
    [run] = all_runs(services)
    assert run.status == "failed" and run.error.startswith("could not be queued")


def test_a_form_without_its_csrf_token_starts_nothing(console, services):
    r = console.post("/admin/reconciliations", data={"mode": "dry_run"})
    assert r.status_code == 400
    assert all_runs(services) == []


# --- a run's page ---------------------------------------------------------------------------------

def test_a_running_run_shows_its_progress_and_the_fragment_polls_until_it_ends(console, services):
    with services.pool.connection() as conn:
        run_id = reconciliations.create(conn, Scope(account="acct_1Progress"), True)
        reconciliations.claim(conn, run_id)
        reconciliations.advance(conn, run_id, lane="acct_1Progress",
                                at={"account": "acct_1Progress", "kind": "charge", "after": "ch_1"},
                                checked=7, progress={"acct_1Progress": {"customer": 4, "charge": 3}}, fixed=0)
    page = console.get(f"/admin/reconciliations/{run_id}")
    words = text(page)
    assert "Running: 7 objects checked so far" in words
    assert "acct_1Progress 4 3 0 0 0" in words  # customers, charges, refunds, subscriptions, payments
    fragment = console.get(f"/admin/reconciliations/{run_id}/progress")
    assert fragment.status_code == 200 and "HX-Refresh" not in fragment.headers
    assert "Running: 7 objects checked so far" in text(fragment) and "<html" not in fragment.get_data(as_text=True)
    assert 'hx-trigger="every 2s"' in fragment.get_data(as_text=True)
    assert re.search(r"<h1>.*>running</span></h1>", fragment.get_data(as_text=True))  # the heading polls too
    with services.pool.connection() as conn:
        reconciliations.finish(conn, run_id, "succeeded")
    done = console.get(f"/admin/reconciliations/{run_id}/progress")
    assert done.headers["HX-Refresh"] == "true"  # the whole page again, with its drift; no more polling
    page = console.get(f"/admin/reconciliations/{run_id}")
    assert "hx-get" not in page.get_data(as_text=True)
    assert "No drift: our records and Stripe's objects agree" in text(page)
    assert "Fix this drift" not in text(page)


def test_a_dry_runs_drift_then_fixing_it_from_its_page(console, services, send, stripe_api, run_worker, profile):
    in_sync(send, stripe_api)
    drift_in_stripe(stripe_api)
    dry = run_id_of(start(console, mode="dry_run"))
    run_worker()
    page = console.get(f"/admin/reconciliations/{dry}")
    html, words = page.get_data(as_text=True), text(page)
    assert "5 objects checked, 5 fields differed, 0 fixed" in words
    assert [h.strip() for h in re.findall(r"<h3>(.*?)</h3>", html)] == [
        "platform · customers", "platform · charges", "platform · refunds", "platform · subscriptions"]
    ours = profile(CUS)["id"]
    links = re.findall(r'<a href="/admin/customers/([^"]+)" title="our customer ([^"]+)">([^<]+)</a>', html)
    assert set(links) == {(ours, CUS, "Jenny Rosen")}  # every item of this customer links our profile
    assert len(links) == 4  # the customer, the charge, the refund and the subscription we hold
    assert "name Jenny Rosen Jenny Renamed no (dry run)" in words
    assert "Stripe has it; we have no record of it" in words  # the subscription we never saw
    assert f"{SUB}" in words and '{"behavior": "void", "resumes_at": null}' in html.replace("&#34;", '"')
    assert "Fix this drift" in words and 'data-confirm="' in html

    r = post(console, f"/admin/reconciliations/{dry}/apply", f"/admin/reconciliations/{dry}")
    fixing = run_id_of(r)
    again = post(console, f"/admin/reconciliations/{dry}/apply", f"/admin/reconciliations/{dry}")
    assert again.status_code == 409 and "already queued or running" in text(again)
    assert f'href="/admin/reconciliations/{fixing}"' in again.get_data(as_text=True)
    run_worker()
    page = console.get(f"/admin/reconciliations/{fixing}")
    words = text(page)
    assert "fixing run applying dry run" in words and "succeeded" in words
    assert words.count(" fixed ") >= 4 and "Fix this drift" not in words
    assert profile(CUS)["name"] == "Jenny Renamed"
    assert f'href="/admin/reconciliations/{fixing}"' in console.get(f"/admin/reconciliations/{dry}").get_data(
        as_text=True)  # the dry run's page lists the runs that fixed it

    refused = post(console, f"/admin/reconciliations/{fixing}/apply", f"/admin/reconciliations/{fixing}")
    assert refused.status_code == 409 and "only a succeeded dry run can be applied" in text(refused)


def test_the_drift_comes_a_hundred_at_a_time(console, services):
    with services.pool.connection() as conn:
        run_id = reconciliations.create(conn, Scope(), True)
        reconciliations.claim(conn, run_id)
        drift_rows.record(conn, run_id, None, "customer", [
            {"object": f"cus_Many{i:03}", "field": "email", "local": f"a{i}@x.test", "stripe": f"b{i}@x.test"}
            for i in range(120)])
        drift_rows.record(conn, run_id, "acct_1Other", "charge", [
            {"object": f"ch_Many{i:03}", "field": "amount_refunded", "local": 0, "stripe": 500} for i in range(30)])
        reconciliations.finish(conn, run_id, "succeeded")
    first = console.get(f"/admin/reconciliations/{run_id}")
    html = first.get_data(as_text=True)
    assert html.count('<code class="id">cus_Many') == 100 and "ch_Many" not in html
    assert "150 fields differed" in text(first)
    more = re.search(r'href="([^"]+drift_after=[^"#]+)#drift" rel="next"', html).group(1)
    second = console.get(more.replace("&amp;", "&"))
    html = second.get_data(as_text=True)
    assert html.count('<code class="id">cus_Many') == 20 and html.count('<code class="id">ch_Many') == 30
    assert "acct_1Other · charges" in html and 'rel="next"' not in html and "First drift items" in html
    bad = console.get(f"/admin/reconciliations/{run_id}?drift_after=not-a-cursor")
    assert bad.status_code == 200 and "not one this page made" in text(bad)
    assert bad.get_data(as_text=True).count('<code class="id">cus_Many') == 100


def test_huge_drift_is_counted_up_to_a_cap(console, services, monkeypatch):
    from webhooks.console import reconciliations as pages

    with services.pool.connection() as conn:
        run_id = reconciliations.create(conn, Scope(), True)
        reconciliations.claim(conn, run_id)
        drift_rows.record(conn, run_id, None, "customer", [
            {"object": f"cus_Cap{i}", "field": "name", "local": "a", "stripe": "b"} for i in range(12)])
        reconciliations.finish(conn, run_id, "succeeded")
    monkeypatch.setattr(pages, "DRIFT_EXACT", 10)
    monkeypatch.setattr(pages, "DRIFT_COUNTED", 5)
    page = console.get(f"/admin/reconciliations/{run_id}")
    assert "10 fields or more differed" in text(page) and "10 or more drift items" in page.get_data(as_text=True)
    assert page.get_data(as_text=True).count('<code class="id">cus_Cap') == 12
    row = console.get("/admin/reconciliations").get_data(as_text=True).split("<tbody>", 1)[1].split("</tr>", 1)[0]
    assert "<td>5+</td>" in row


def test_a_failed_run_shows_its_error_and_an_unknown_run_is_a_404_page(console, services):
    with services.pool.connection() as conn:
        run_id = reconciliations.create(conn, Scope(), True)
        reconciliations.finish(conn, run_id, "failed", "Stripe refused: invalid API key")
    words = text(console.get(f"/admin/reconciliations/{run_id}"))
    assert "Error Stripe refused: invalid API key" in words and "Fix this drift" not in words
    r = console.get(f"/admin/reconciliations/{NO_RUN}", headers={"Accept": "text/html"})
    assert r.status_code == 404 and "There is no reconciliation run" in text(r)
    assert console.get(f"/admin/reconciliations/{NO_RUN}/progress", headers={"Accept": "text/html"}).status_code == 404
    assert post(console, f"/admin/reconciliations/{NO_RUN}/apply").status_code == 404
    assert console.get("/admin/reconciliations/not%20an%20id").status_code == 404


# --- the list of runs -----------------------------------------------------------------------------

def test_the_runs_newest_first_fifty_at_a_time(console, services):
    with services.pool.connection() as conn:
        ids = [reconciliations.create(conn, Scope(since=datetime(2025, 1, 1, tzinfo=UTC).replace(day=1 + i % 28,
                                                                                                 month=1 + i // 28)),
                                      i % 2 == 0) for i in range(55)]
        for run_id in ids:
            reconciliations.finish(conn, run_id, "succeeded")
        drift_rows.record(conn, ids[-1], None, "customer",
                          [{"object": "cus_X", "field": "name", "local": "a", "stripe": "b"}])
    page = console.get("/admin/reconciliations")
    html = page.get_data(as_text=True)
    shown = re.findall(r'href="/admin/reconciliations/([0-9a-f-]{36})" title="run', html)
    assert shown == ids[::-1][:50]
    first_row = html.split("<tbody>", 1)[1].split("</tr>", 1)[0]
    assert "dry run" in first_row and ">1<" in first_row.replace(" ", "")  # its drift count
    older = re.search(r'href="(/admin/reconciliations\?before=[^"]+)" rel="next"', html).group(1)
    rest = console.get(older).get_data(as_text=True)
    assert re.findall(r'href="/admin/reconciliations/([0-9a-f-]{36})" title="run', rest) == ids[::-1][50:]
    assert 'rel="next"' not in rest and "Newest runs" in rest
    bad = console.get("/admin/reconciliations?before=%3Cscript%3E")
    assert bad.status_code == 200 and "not one this page made" in text(bad)
