"""What a hostile or careless caller sends through the admin API, the console and its dashboard: refused with
a clear 4xx and nothing changed, never a 500, and nothing stored that breaks a later read."""
from __future__ import annotations

import re
from html import escape, unescape
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from domain.settings import MAX_IDLE_MINUTES
from domain.times import parse_iso
from teachery_sync.cli import main
from tests.integration.test_console_session import sign_in
from tests.stripe_events import DAY, T0, charge, customer, event, subscription
from tests.support import ADMIN_TOKEN, TEST_REDIS_URL, WEBHOOK_SECRET

# In range where it was written, out of range in UTC (year 10000, year 0): no datetime can hold the instant.
BEYOND_UTC = ("9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00")


@pytest.fixture
def subscriber(stripe_api, send, profile):
    cus = customer("cus_Hostile", email="host@example.com", name="Host Ile")
    sub = subscription("sub_Hostile", customer="cus_Hostile", created=T0, status="active",
                       metadata={"course_id": "course_h"}, current_period_start=T0, current_period_end=T0 + 30 * DAY)
    stripe_api.put(cus, sub)
    send(event("customer.created", cus, created=T0), event("customer.subscription.created", sub, created=T0))
    return profile("cus_Hostile")


@pytest.mark.parametrize("when", BEYOND_UTC)
def test_a_time_beyond_utcs_range_is_refused_and_stores_no_run(admin, when):
    status, body = admin("POST", "/reconciliations", {"since": when, "dry_run": True})
    assert status == 400 and "since" in body["error"], body
    status, body = admin("GET", f"/events?since={when.replace('+', '%2B')}")
    assert status == 400 and "since" in body["error"], body
    status, body = admin("POST", "/reconciliations", {"since": "2026-11-01T00:00:00Z", "dry_run": True})
    assert status == 202, body
    status, report = admin("GET", f"/reconciliations/{body['id']}")  # the only run, and readable
    assert status == 200 and report["scope"]["since"] == "2026-11-01T00:00:00Z", report


@pytest.mark.parametrize("when", BEYOND_UTC)
def test_a_pause_resuming_beyond_utcs_range_is_refused_before_stripe_is_asked(admin, stripe_api, subscriber, when):
    status, body = admin("POST", "/subscriptions/sub_Hostile/pause", {"behavior": "void", "resumes_at": when})
    assert status == 400 and "resumes_at" in body["error"], body
    assert stripe_api.writes("/v1/subscriptions/sub_Hostile") == []


@pytest.mark.parametrize("when", ["2026-11-01T00:00:00\u0000", "2026-11-01\u000000:00:00", "2026-11-01\u00e900:00:00"])
def test_a_time_with_a_nul_or_another_separator_is_not_an_iso_time(admin, when):
    """datetime.fromisoformat takes any one character between the date and the time, and ignores a trailing NUL:
    such a `since` started a run."""
    status, body = admin("POST", "/reconciliations", {"since": when, "dry_run": True})
    assert status == 400 and "since" in body["error"], body
    assert admin("GET", "/events?limit=1")[0] == 200
    with pytest.raises(ValueError):
        parse_iso(when)


@pytest.mark.parametrize("path", ["/admin/sign-in", "/admin/customers", "/admin/events", "/admin/reconciliations",
                                  "/admin/health", "/admin/no-such-page", "/admin/rq/", "/admin/api/events",
                                  "/healthz"])
def test_no_page_may_be_framed_by_another_site_and_console_pages_run_only_their_own_scripts(client, path):
    """No answer said it may not be framed: another site could show a console page in an invisible frame and have
    an operator click its buttons (a refund's, a cancellation's). Console pages had no Content-Security-Policy."""
    sign_in(client)
    r = client.get(path, headers={"Accept": "text/html"}, follow_redirects=True)
    assert r.headers["X-Frame-Options"] == "DENY", (path, r.status_code)
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    policy = dict(part.strip().partition(" ")[::2] for part in r.headers["Content-Security-Policy"].split(";"))
    assert policy["frame-ancestors"] == "'none'", policy
    if path.startswith("/admin/") and not path.startswith(("/admin/rq", "/admin/api")):
        assert policy["script-src"] == "'self'" and policy["object-src"] == "'none'", policy
        assert policy["form-action"] == "'self'", policy
    if path.startswith("/admin/"):  # customers' data: no browser cache or proxy keeps it
        assert r.headers["Cache-Control"] == "no-store", (path, r.headers.get("Cache-Control"))


def test_the_consoles_static_files_may_be_cached(client):
    r = client.get("/admin/static/console.js")
    assert r.status_code == 200 and "no-store" not in r.headers.get("Cache-Control", "")


@pytest.mark.parametrize(("path", "body"), [
    ("/subscriptions/sub_Hostile/cancel", b'{"at_period_end": true, "at_period_end": false}'),
    ("/customers/{id}", b'{"name": "Eve", "email": "eve@example.com", "name": "Mallory"}'),
    ("/reconciliations", b'{"dry_run": true, "dry_run": false}'),
])
def test_a_field_named_twice_is_refused_and_nothing_changes(client, stripe_api, subscriber, profile, path, body):
    """JSON with a field twice was read as its last value: a proxy or audit log that reads the first (as many
    parsers do) saw a dry run, a cancellation at period end, where we acted on another."""
    method = "PATCH" if path.startswith("/customers") else "POST"
    r = client.open("/admin/api" + path.format(id=subscriber["id"]), method=method, data=body,
                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"})
    assert r.status_code == 400 and "more than once" in r.get_json()["error"], r.get_data()
    assert stripe_api.writes() == []
    assert profile("cus_Hostile") == subscriber
    assert client.get("/admin/api/events?limit=1", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 200


DOTTED = "Python 101 (v2.0)"  # metadata.course_id is free text in Stripe: a space, a dot, brackets


@pytest.fixture
def dotted_buyer(stripe_api, send, profile):
    cus = customer("cus_Dotted", email="dot@example.com", name="Dot Ted")
    ch = charge("ch_Dotted", customer="cus_Dotted", amount=4900, created=T0, metadata={"course_id": DOTTED})
    stripe_api.put(cus, ch)
    send(event("customer.created", cus, created=T0), event("charge.succeeded", ch, created=T0))
    found = profile("cus_Dotted")
    assert [e["course_id"] for e in found["enrollments"]] == [DOTTED]
    return found


def test_a_course_whose_id_stripe_sent_with_a_space_or_a_dot_can_be_revoked_and_granted(admin, dotted_buyer, profile):
    """The course id in the path had to be A-Z a-z 0-9 _ -: an enrollment made from a purchase whose course_id
    is "Python 101 (v2.0)" could be neither revoked nor granted back (404), from the API or the console."""
    path = f"/customers/{dotted_buyer['id']}/courses/{quote(DOTTED)}"
    status, body = admin("POST", f"{path}/revoke")
    assert status == 200 and body["enrollment"]["access"] == "revoked", body
    assert [e["access"] for e in profile("cus_Dotted")["enrollments"]] == ["revoked"]
    status, body = admin("POST", f"{path}/grant")
    assert status == 200 and body["enrollment"]["access"] == "active", body
    # A course id outside the pattern is still not created by a grant: only one the customer has is taken.
    status, body = admin("POST", f"/customers/{dotted_buyer['id']}/courses/{quote('New course.v3')}/grant")
    assert status == 404, body
    assert [e["course_id"] for e in profile("cus_Dotted")["enrollments"]] == [DOTTED]


def test_the_console_revokes_a_course_whose_id_has_a_space_or_a_dot(client, dotted_buyer, profile):
    sign_in(client)
    page = client.get(f"/admin/customers/{dotted_buyer['id']}")
    action = unescape(re.search(r'action="([^"]*/revoke)"', page.get_data(as_text=True)).group(1))
    form = page.get_data(as_text=True)[page.get_data(as_text=True).index(f'action="{escape(action)}"'):]
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form[:form.index("</form>")]))
    r = client.post(action, data=fields)
    assert r.status_code == 303, r.get_data(as_text=True)[:300]
    assert [e["access"] for e in profile("cus_Dotted")["enrollments"]] == ["revoked"]


@pytest.mark.parametrize("tolerance", ["-300", "-1", "\u0663\u0660\u0660", "1e3"])
def test_a_webhook_tolerance_below_zero_or_not_in_digits_is_refused_at_start(database_url, tolerance):
    """WEBHOOK_TOLERANCE_SECONDS=-300 was taken: every webhook then answered 400 "timestamp outside the
    tolerance" (no signature is from the future), until Stripe gave up on the endpoint."""
    env = {"DATABASE_URL": database_url, "REDIS_URL": TEST_REDIS_URL, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET}
    done = CliRunner().invoke(main, ["events", "list"], env={**env, "WEBHOOK_TOLERANCE_SECONDS": tolerance})
    assert done.exit_code != 0 and "WEBHOOK_TOLERANCE_SECONDS" in done.output, done.output
    assert "Traceback" not in done.output
    done = CliRunner().invoke(main, ["events", "list"], env={**env, "WEBHOOK_TOLERANCE_SECONDS": "300"})
    assert done.exit_code == 0, done.output


@pytest.mark.parametrize("minutes", ["1e10", "99999999999", "1e300"])
def test_a_console_idle_time_beyond_ten_years_is_refused_at_start(database_url, minutes):
    """CONSOLE_IDLE_MINUTES=1e10 (a careless "never") was taken: every console sign-in then answered 500, its
    cookie's expiry beyond any date; 1e13 stopped gunicorn's workers with a traceback."""
    env = {"DATABASE_URL": database_url, "REDIS_URL": TEST_REDIS_URL, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET}
    done = CliRunner().invoke(main, ["events", "list"], env={**env, "CONSOLE_IDLE_MINUTES": minutes})
    assert done.exit_code != 0 and "CONSOLE_IDLE_MINUTES must be a positive number" in done.output, done.output
    assert "(minutes)" in done.output and "Traceback" not in done.output
    done = CliRunner().invoke(main, ["events", "list"], env={**env, "CONSOLE_IDLE_MINUTES": "525600"})
    assert done.exit_code == 0, done.output


def test_the_longest_console_idle_time_still_signs_in(services, settings):
    """At the bound, a sign-in sets a cookie (1e10 minutes answered 500)."""
    from dataclasses import replace

    from webhooks.app import create_app

    app = create_app(services=replace(services, settings=replace(settings, console_idle_minutes=MAX_IDLE_MINUTES)))
    client = app.test_client()
    r = sign_in(client)
    assert r.status_code == 302, r.status_code
    assert client.get("/admin/customers").status_code == 200


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("ADMIN_TOKENS", "ops: SpacedToken77", "ADMIN_TOKENS entry 1 (ops): the token starts or ends with a space"),
    ("ADMIN_TOKENS", "ops:okToken123,support:SpacedToken77 :platform",
     "ADMIN_TOKENS entry 2 (support): the token starts or ends with a space"),
    ("ADMIN_TOKEN", "SpacedToken77 ", "ADMIN_TOKEN starts or ends with a space"),
])
def test_an_admin_token_with_a_space_at_an_end_is_refused_at_start(database_url, variable, value, says):
    """A request's token is read trimmed: "ops: SpacedToken77" made a token no bearer header or sign-in could ever
    match, and every request with it was a 401 (then 429) without a word about why."""
    env = {"DATABASE_URL": database_url, "REDIS_URL": TEST_REDIS_URL, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET}
    done = CliRunner().invoke(main, ["events", "list"], env={**env, variable: value})
    assert done.exit_code != 0 and says in done.output, done.output
    assert "SpacedToken77" not in done.output and "Traceback" not in done.output
    done = CliRunner().invoke(main, ["events", "list"], env={**env, variable: value.replace(" ", "")})
    assert done.exit_code == 0, done.output
