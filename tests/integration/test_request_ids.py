"""Every answer carries the request id its log lines carry: the caller's X-Request-Id when it is
short and plain, a fresh one otherwise."""
from __future__ import annotations

import re

import pytest

FRESH = re.compile(r"^[0-9a-f]{32}$")


@pytest.mark.parametrize("path", ["/healthz", "/admin/api/customers?q=x", "/no-such-page"])
def test_a_safe_incoming_id_is_kept(client, path):
    answer = client.get(path, headers={"X-Request-Id": "lb-7f3a.42:9"})
    assert answer.headers["X-Request-Id"] == "lb-7f3a.42:9"


@pytest.mark.parametrize("incoming", [None, "", "has spaces", "x" * 65, "<script>", "id\u00e9", "-leading-dash"])
def test_anything_else_gets_a_fresh_id(client, incoming):
    headers = {} if incoming is None else {"X-Request-Id": incoming}
    first = client.get("/healthz", headers=headers).headers["X-Request-Id"]
    second = client.get("/healthz", headers=headers).headers["X-Request-Id"]
    assert FRESH.match(first) and FRESH.match(second) and first != second


def test_refused_requests_have_one_too(client):
    answer = client.get("/admin/api/customers?q=x")  # no token: 401 before anything else
    assert answer.status_code == 401 and FRESH.match(answer.headers["X-Request-Id"])
