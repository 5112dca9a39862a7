"""Through Flask's test client: the web's fail-fast pool (PostgreSQL cut by tests/tcp_proxy.py answers
503 at once after the first failure, and recovers on its own), and the actor of an admin action
stored on its admin_actions row and on the activity it wrote."""
from __future__ import annotations

import dataclasses
import time

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from teachery_sync.bootstrap import build
from tests.stripe_events import T0, charge, customer, event
from tests.support import ADMIN_TOKEN
from tests.tcp_proxy import TcpProxy

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def cut_off(settings):
    """An app whose web services reach PostgreSQL through a proxy the test cuts."""
    from webhooks.app import create_app

    with TcpProxy(int(conninfo_to_dict(settings.database_url).get("port") or 5432)) as proxy:
        dsn = make_conninfo(settings.database_url, host="127.0.0.1", port=str(proxy.port))
        services = build(dataclasses.replace(settings, database_url=dsn), pool_size=4, web=True).open()
        app = create_app(services=services)
        app.config["TESTING"] = True
        try:
            yield proxy, app.test_client()
        finally:
            services.close()


def _search(client):
    start = time.monotonic()
    response = client.get("/admin/api/customers?q=jenny", headers=AUTH)
    return response, time.monotonic() - start


@pytest.mark.parametrize("hang", [False, True], ids=["refused", "hanging"])
def test_the_web_pool_answers_503_fast_then_at_once_and_recovers(cut_off, hang):
    proxy, client = cut_off
    assert _search(client)[0].status_code == 200

    proxy.cut(hang=hang)
    first, took = _search(client)
    assert (first.status_code, first.get_json()) == (503, {"error": "database unavailable, retry later"})
    assert took < 5, took
    again, took = _search(client)
    assert again.status_code == 503 and took < 1, took  # the breaker: nobody waits while it is open

    proxy.restore()
    deadline = time.time() + 20
    while (answer := _search(client)[0]).status_code != 200:
        assert time.time() < deadline, answer.get_json()
        time.sleep(0.2)
    assert answer.get_json() == {"customers": []}


def test_an_admin_action_records_its_actor_on_the_action_and_its_activity(services, send, stripe_api, admin):
    stripe_api.put(customer("cus_Actor", email="actor@example.com", name="Ada Actor"))
    send(event("charge.succeeded", charge("ch_Actor", customer="cus_Actor", amount=1000, created=T0,
                                          metadata={"course_id": "course_actor"}), created=T0))
    status, profile = admin("GET", "/stripe-customers/cus_Actor")
    assert status == 200, profile

    status, body = admin("POST", f"/customers/{profile['id']}/courses/course_actor/revoke")

    assert status == 200, body
    with services.pool.connection() as conn:
        actions = conn.execute("SELECT kind, actor FROM admin_actions").fetchall()
        activity = conn.execute("SELECT kind, origin, actor FROM activity ORDER BY id").fetchall()
    assert actions == [("course.revoke", "admin")]
    assert ("enrollment.revoked", "teachery", "admin") in activity
    assert all(actor is None for _, origin, actor in activity if origin == "stripe"), activity
    status, after = admin("GET", "/stripe-customers/cus_Actor")
    assert [a["actor"] for a in after["activity"] if a["kind"] == "enrollment.revoked"] == ["admin"]
