"""Every request refused for what the caller sent is logged once, with its status and reason, and without
its body or any secret."""
from __future__ import annotations

import json

import pytest
from structlog.testing import capture_logs

from tests.support import ADMIN_TOKEN, WEBHOOK_SECRET, sign

MARK = "BODY-MARK-7f3a"  # in every body sent: it must reach no log line
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _bad_signature(client):
    body = json.dumps({"id": "evt_1", "object": "event", "type": "x", "data": {"object": {"note": MARK}}}).encode()
    return client.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": "t=1,v1=00"})


def _not_an_event(client):
    body = json.dumps({"note": MARK}).encode()
    return client.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": sign(body)})


REFUSALS = {
    "bad signature": (_bad_signature, 400),
    "not an event": (_not_an_event, 400),
    "wrong token": (lambda c: c.get("/admin/api/customers?q=a", headers={"Authorization": f"Bearer {MARK}"}), 401),
    "unknown route": (lambda c: c.get("/admin/api/nothing-here", headers=AUTH), 404),
    "bad query": (lambda c: c.get(f"/admin/api/events?status={MARK}", headers=AUTH), 400),
    "bad body": (lambda c: c.post("/admin/api/reconciliations", data=json.dumps({"note": MARK}), headers=AUTH), 400),
    "never deleted": (lambda c: c.delete("/admin/api/customers/cus1", headers=AUTH), 405),
    "too large": (lambda c: c.post("/admin/api/reconciliations", data=MARK * 200_000, headers=AUTH), 413),
    "console form without csrf": (lambda c: c.post("/admin/sign-in", data={"token": MARK}), 400),
    "unknown customer": (lambda c: c.post("/admin/api/customers/nobody/welcome-email", headers=AUTH), 404),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_a_refused_request_is_logged_once_with_its_reason(client, name):
    send, status = REFUSALS[name]
    with capture_logs() as logs:
        answer = send(client)
    assert answer.status_code == status
    lines = [line for line in logs if line["event"] == "request refused"]
    assert len(lines) == 1, logs
    assert lines[0]["status"] == status and lines[0]["reason"]
    for line in logs:
        shown = json.dumps(line, default=str)
        assert MARK not in shown, line
        assert WEBHOOK_SECRET not in shown and ADMIN_TOKEN not in shown
