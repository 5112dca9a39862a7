"""Every error answer of the real `teachery-sync web` is JSON: gunicorn's own refusals (before Flask
sees the request), 405s (with Allow), and a request body nested too deeply for the JSON parser."""
from __future__ import annotations

import json
import socket

import requests

from tests.blackbox.service import ADMIN_TOKEN

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def assert_json_error(r, status: int):
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    assert isinstance(r.json()["error"], str) and r.json()["error"], r.text


def raw_request(svc, data: bytes) -> tuple[int, dict, bytes]:
    """Send bytes as they are (requests would refuse to send a malformed request line)."""
    with socket.create_connection(("127.0.0.1", svc.port), timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in header_lines)}
    return int(status_line.split()[1]), headers, body


def test_gunicorn_refusals_are_json(svc):
    r = requests.get(svc.url + "/admin/api/customers?q=" + "x" * 5000, headers=AUTH, timeout=10)
    assert_json_error(r, 414)
    r = requests.get(svc.url + "/healthz", headers={"X-Big": "y" * 20_000}, timeout=10)
    assert_json_error(r, 431)
    r = requests.get(svc.url + "/healthz", headers={f"X-Many-{i}": "z" for i in range(150)}, timeout=10)
    assert_json_error(r, 431)
    status, headers, body = raw_request(svc, b"THIS IS NOT HTTP\r\n\r\n")
    assert status == 400 and headers["content-type"].startswith("application/json"), (status, headers, body)
    assert isinstance(json.loads(body)["error"], str)
    # The service is still fine.
    assert requests.get(svc.url + "/readyz", timeout=5).status_code == 200


def test_405_answers_carry_allow(svc):
    r = requests.get(svc.url + "/webhooks/stripe", timeout=10)
    assert_json_error(r, 405)
    assert "POST" in r.headers["Allow"], r.headers
    r = requests.put(svc.url + "/admin/api/events", headers=AUTH, timeout=10)
    assert_json_error(r, 405)
    assert "GET" in r.headers["Allow"], r.headers
    r = requests.delete(svc.url + "/admin/api/customers/00000000-0000-0000-0000-000000000000", headers=AUTH, timeout=10)
    assert_json_error(r, 405)
    allowed = {m.strip() for m in r.headers["Allow"].split(",")}
    assert {"GET", "PATCH"} <= allowed and "DELETE" not in allowed, r.headers


def test_a_body_nested_100000_deep_is_400_on_every_json_route(svc):
    deep = b'{"amount": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    for method, path in (("POST", "/payments/ch_BBdeep/refund"),
                         ("PATCH", "/customers/00000000-0000-0000-0000-000000000000"),
                         ("POST", "/subscriptions/sub_BBdeep/pause"),
                         ("POST", "/reconciliations")):
        r = requests.request(method, svc.url + "/admin/api" + path, data=deep, timeout=15,
                             headers={**AUTH, "Content-Type": "application/json"})
        assert_json_error(r, 400)
    assert requests.get(svc.url + "/readyz", timeout=5).status_code == 200


def test_a_malformed_chunked_body_is_400_on_every_route(svc):
    """gunicorn reads a chunked body as the app reads it, so a bad chunk was raised inside Flask: a 500."""
    for path, auth in (("/webhooks/stripe", b""), ("/admin/api/reconciliations", f"Authorization: Bearer {ADMIN_TOKEN}\r\n".encode()),
                       ("/admin/sign-in", b"")):
        for chunks in (b"zz\r\nabc\r\n0\r\n\r\n", b"3\r\nabcX\r\n0\r\n\r\n"):
            status, headers, body = raw_request(svc, b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + auth
                                                + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks)
            assert status == 400 and headers["content-type"].startswith("application/json"), (path, status, body)
            assert "malformed" in json.loads(body)["error"] or path == "/admin/sign-in", body  # there: no CSRF token
    assert svc.events() == []
    assert requests.get(svc.url + "/readyz", timeout=5).status_code == 200
