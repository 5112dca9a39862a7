"""The console's sign-in through the Flask app: session cookie, CSRF, refusals, and the API untouched."""
from __future__ import annotations

import re

import pytest
from structlog.testing import capture_logs

from tests.support import ADMIN_TOKEN

PAGES = ["/admin/customers", "/admin/events", "/admin/reconciliations", "/admin/health", "/admin/rq/"]


def csrf_of(page: bytes) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()


def sign_in(client, token: str = ADMIN_TOKEN, **extra):
    form = client.get("/admin/sign-in")
    return client.post("/admin/sign-in", data={"token": token, "csrf_token": csrf_of(form.data), **extra})


@pytest.mark.parametrize("path", PAGES)
def test_every_page_needs_a_session(client, path):
    r = client.get(path)
    assert r.status_code == 302
    assert r.headers["Location"].startswith("/admin/sign-in?next=")


def test_sign_in_sets_a_strict_cookie_and_opens_every_page(client):
    r = sign_in(client, next="/admin/events")
    assert r.status_code == 302 and r.headers["Location"] == "/admin/events"
    cookie = [h for h in r.headers.getlist("Set-Cookie") if h.startswith("teachery_console=")][-1]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie  # plain http here; see the https test
    assert ADMIN_TOKEN not in cookie
    for path in PAGES:
        page = client.get(path)
        assert page.status_code == 200, path


def test_the_cookie_is_secure_over_https(client):
    form = client.get("/admin/sign-in", base_url="https://localhost")
    r = client.post("/admin/sign-in", base_url="https://localhost", headers={"Referer": "https://localhost/admin/"},
                    data={"token": ADMIN_TOKEN, "csrf_token": csrf_of(form.data)})
    assert r.status_code == 302
    cookie = [h for h in r.headers.getlist("Set-Cookie") if h.startswith("teachery_console=")][-1]
    assert "Secure" in cookie


def test_a_wrong_token_is_refused_with_a_message(client):
    r = sign_in(client, token="not-the-token")
    assert r.status_code == 401
    assert b"not an admin token" in r.data
    assert client.get("/admin/customers").status_code == 302


def test_a_form_without_its_csrf_token_is_refused(client):
    client.get("/admin/sign-in")
    r = client.post("/admin/sign-in", data={"token": ADMIN_TOKEN})
    assert r.status_code == 400 and b"did not come with its CSRF token" in r.data
    assert client.get("/admin/customers").status_code == 302
    sign_in(client)
    assert client.post("/admin/sign-out").status_code == 400  # signed in, yet no token: refused
    assert client.get("/admin/customers").status_code == 200


def test_sign_out_ends_the_session(client):
    sign_in(client)
    page = client.get("/admin/customers")
    r = client.post("/admin/sign-out", data={"csrf_token": csrf_of(page.data)})
    assert r.status_code == 302
    assert client.get("/admin/customers").status_code == 302


def test_a_token_in_the_url_signs_nobody_in(client):
    client.get(f"/admin/sign-in?token={ADMIN_TOKEN}")
    assert client.get("/admin/customers").status_code == 302
    form = client.get("/admin/sign-in")
    r = client.post(f"/admin/sign-in?token={ADMIN_TOKEN}", data={"csrf_token": csrf_of(form.data)})
    assert r.status_code == 401


def test_a_changed_token_ends_its_sessions(client, app, services):
    sign_in(client)
    assert client.get("/admin/customers").status_code == 200
    services.settings = services.settings.with_(admin_token="a-new-token-entirely")
    assert client.get("/admin/customers").status_code == 302


def test_the_session_is_refused_by_the_json_api(client):
    sign_in(client)
    assert client.get("/admin/api/customers?q=a").status_code == 401


def test_repeated_failures_are_slowed_down_for_console_and_api(client, services):
    services.settings = services.settings.with_(auth_failure_limit="3/minute")
    for _ in range(3):
        assert sign_in(client, token="wrong").status_code == 401
    with capture_logs() as logs:
        r = sign_in(client, token="wrong again")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert [line["status"] for line in logs if line["event"] == "request refused"] == [429]  # logged once
    assert b"Too many wrong tokens" in r.data
    api = client.get("/admin/api/customers?q=a", headers={"Authorization": "Bearer wrong"})
    assert api.status_code == 429 and api.json["error"].startswith("too many failed")
    assert int(api.headers["Retry-After"]) > 0
    # the right token still passes: a stale script's failures never lock the real admins out
    ok = client.get("/admin/api/customers?q=a", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert ok.status_code == 200
    assert sign_in(client).status_code == 302


def test_rq_dashboard_posts_must_come_from_the_site(client):
    sign_in(client)
    assert client.post("/admin/rq/job/x/requeue").status_code == 400
    assert client.get("/admin/rq/requeue/default").status_code == 405
    same = client.post("/admin/rq/job/x/requeue", headers={"Origin": "http://localhost"})
    assert same.status_code != 400


def test_console_errors_are_pages_for_browsers_and_json_for_programs(client):
    sign_in(client)
    html = client.get("/admin/no-such-page", headers={"Accept": "text/html"})
    assert html.status_code == 404 and html.mimetype == "text/html"
    plain = client.get("/admin/no-such-page")
    assert plain.status_code == 404 and plain.json["error"]
    api = client.get("/admin/api/nothing", headers={"Accept": "text/html", "Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert api.mimetype == "application/json"


def test_an_idle_session_ends(services):
    import time

    from webhooks.app import create_app

    services.settings = services.settings.with_(console_idle_minutes=1 / 60)  # one second
    client = create_app(services=services).test_client()
    sign_in(client)
    assert client.get("/admin/customers").status_code == 200  # a request renews it
    time.sleep(2.1)  # the cookie's signature has a one-second clock
    assert client.get("/admin/customers").status_code == 302


def test_an_htmx_poll_after_the_session_ended_sends_the_page_to_sign_in(client):
    r = client.get("/admin/reconciliations", headers={"HX-Request": "true",
                                                      "HX-Current-URL": "http://localhost/admin/reconciliations/x?a=1"})
    assert r.status_code == 401
    assert r.headers["HX-Redirect"] == "/admin/sign-in?next=/admin/reconciliations/x?a%3D1"


@pytest.mark.parametrize("target", ["/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", "\t//evil.example",
                                    "/admin/customers\x0b", "//evil.example", "https://evil.example/", "/\\evil.example"])
def test_signing_in_never_goes_off_site_nor_fails_on_a_damaged_next(client, target):
    """Browsers drop tabs and line breaks from a URL ("/\\t/evil" is "//evil", another site): a `next` with a
    control character goes to the console's home, as one naming another site does, never to a 500."""
    r = sign_in(client, next=target)
    assert r.status_code == 302, (target, r.status_code)
    assert r.headers["Location"] == "/admin/customers", (target, r.headers["Location"])
    page = client.get("/admin/sign-in", query_string={"next": target})
    assert page.status_code == 200 and b"evil.example" not in page.data, target


@pytest.mark.parametrize("path, status", [
    ("/admin/rq/1/view/workers", 404),  # one Redis: instance 0 only
    ("/admin/rq/9999999999999999/data/queues.json", 404),
    ("/admin/rq/0/view/job/no-such-job", 404),
    ("/admin/rq/0/data/job/no-such-job.json", 404),
    ("/admin/rq/0/data/jobs/teachery-events/no-such-registry/8/asc/1.json", 404),
    ("/admin/rq/0/data/jobs/teachery-events/failed/x/asc/1.json", 400),
    ("/admin/rq/0/data/jobs/teachery-events/failed/0/asc/1.json", 400),
    ("/admin/rq/0/data/jobs/teachery-events/failed/8/asc/-3.json", 400),
])
def test_rq_dashboard_links_we_never_made_are_refused_not_500(client, path, status):
    sign_in(client)
    r = client.get(path)
    assert r.status_code == status and r.json["error"], (path, r.status_code, r.get_data()[:200])
    assert client.get(path, headers={"Accept": "text/html"}).mimetype == "text/html"
    assert client.get("/admin/rq/0/data/jobs/teachery-events/failed/8/asc/1.json").status_code == 200
    posted = client.post("/admin/rq/job/no-such-job/requeue", headers={"Origin": "http://localhost"})
    assert posted.status_code == 404, posted.status_code
