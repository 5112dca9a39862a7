"""The webhook's lean path (no Flask machinery), and the ledger's lean indexes."""
import json
import time

import psycopg

from tests.integration.test_drain import STORY
from tests.support import sign

EVENT = STORY[0]


def _post(client, body: bytes, path: str = "/webhooks/stripe", **headers):
    return client.post(path, data=body, headers={"Stripe-Signature": sign(body), "Content-Type": "application/json",
                                                 **headers})


def test_a_plain_webhook_skips_flask_and_answers_the_same(app, client, admin):
    app.before_request(lambda: ("Flask's machinery ran", 418))  # only requests Flask handles meet it
    body = json.dumps(EVENT).encode()
    response = _post(client, body, **{"X-Request-Id": "req-fast-1"})
    assert (response.status_code, response.get_json()) == (200, {"received": True})
    assert response.headers["X-Request-Id"] == "req-fast-1"
    assert _post(client, body).get_json() == {"received": True, "duplicate": True}
    bad = client.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": "t=1,v1=00"})
    assert bad.status_code == 400 and bad.get_json()["error"].startswith("signature verification failed")
    assert _post(client, body, path="/webhooks/stripe?x=1").status_code == 418  # not plain: Flask's


def test_a_bug_on_the_lean_path_is_a_json_500_with_the_request_id(services, client, monkeypatch):
    monkeypatch.setattr("domain.ledger.record_events", lambda *a, **k: 1 / 0)
    response = _post(client, json.dumps(EVENT).encode(), **{"X-Request-Id": "req-bug-1"})
    assert (response.status_code, response.get_json()) == (500, {"error": "internal error"})
    assert response.headers["X-Request-Id"] == "req-bug-1"


def test_events_carries_only_the_indexes_its_reads_use(services):
    with psycopg.connect(services.settings.database_url) as conn:
        names = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'events'")}
    assert names == {"events_pkey", "events_received", "events_type", "events_account", "events_claim", "events_due",
                     "events_waiting_on", "events_applied"}  # events_applied: partial, written when applied, not at ingest


def test_a_connection_the_server_closed_is_replaced_not_used(settings, client, services):
    """The web pool checks connections without a round trip (a readable idle socket was closed): a
    terminated backend costs no webhook a 503."""
    from teachery_sync.bootstrap import build
    from webhooks.app import create_app

    web = build(settings, pool_size=2, web=True)
    web_client = create_app(services=web).test_client()
    try:
        assert _post(web_client, json.dumps(STORY[0]).encode()).status_code == 200
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            killed = [pid for pid, done in conn.execute(
                "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND application_name = '' AND state = 'idle'") if done]
            # pg_terminate_backend only signals: the test is about a connection already closed
            deadline = time.monotonic() + 10
            while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)",
                               (killed,)).fetchone()[0] and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.05)  # the backend leaves pg_stat_activity just before its socket closes
        assert killed
        for event in STORY[1:]:
            response = _post(web_client, json.dumps(event).encode())
            assert response.status_code == 200, response.get_json()
    finally:
        web.close()
