"""PostgreSQL or Redis down under a real `teachery-sync web`: every route answers a JSON 503 within
seconds (never a 500, never a hang), health and readiness answer at once even while webhooks are in
flight, and everything recovers when the server is back, without restarting anything.

The web server here talks to PostgreSQL and Redis through tests/tcp_proxy.py, which cuts them:
refused (the server is down) or hanging (it accepts TCP and never answers).
"""
from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from domain.db import WEB_BREAKER_COOLDOWN
from teachery_sync.embedded import free_port
from tests.blackbox.service import ADMIN_TOKEN, BIN, DATABASE_URL, REDIS_URL, ROOT, sign
from tests.tcp_proxy import TcpProxy
from tests.worker_processes import kill_group

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FAST = 5.0  # seconds: "within about 3 s", with room for a loaded machine
AT_ONCE = 1.0


@pytest.fixture
def proxied(service):
    """A second `teachery-sync web` (2 workers) on the black-box database and Redis, through proxies."""
    pg_port = int(conninfo_to_dict(DATABASE_URL).get("port") or 5432)
    redis_parts = urlsplit(REDIS_URL)
    with TcpProxy(pg_port) as pg, TcpProxy(redis_parts.port or 6379) as rd:
        port = free_port()
        env = {**service.env, "DATABASE_URL": make_conninfo(DATABASE_URL, host="127.0.0.1", port=str(pg.port)),
               "REDIS_URL": urlunsplit(redis_parts._replace(netloc=f"127.0.0.1:{rd.port}"))}
        with open(service.logdir / f"web-proxied-{port}.log", "wb") as log:  # the child keeps its own copy
            proc = subprocess.Popen([str(BIN), "web", "--port", str(port), "--workers", "2"], env=env, cwd=ROOT,
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        web = SimpleNamespace(url=f"http://127.0.0.1:{port}", pg=pg, redis=rd, proc=proc)
        try:
            _wait_ready(web, timeout=30)
            yield web
        finally:
            kill_group(proc)


def _wait_ready(web, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert web.proc.poll() is None, "web exited"
        try:
            if requests.get(web.url + "/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not ready again within {timeout}s")


def timed(method: str, url: str, **kwargs):
    start = time.monotonic()
    r = requests.request(method, url, timeout=30, **kwargs)
    return r, time.monotonic() - start


def webhook(n: int) -> tuple[bytes, dict]:
    body = json.dumps({"id": f"evt_BBfault{n}", "object": "event", "type": "customer.updated", "created": 1767225600,
                       "data": {"object": {"id": "cus_BBfault", "object": "customer", "name": "F"}}}).encode()
    return body, {"Stripe-Signature": sign(body), "Content-Type": "application/json"}


ADMIN_CALLS = [
    ("GET", "/customers?q=jenny", None),
    ("GET", "/customers/00000000-0000-0000-0000-000000000000", None),
    ("GET", "/stripe-customers/cus_BBfault", None),
    ("GET", "/events?limit=5", None),
    ("GET", "/events/evt_BBfault0", None),
    ("POST", "/events/evt_BBfault0/replay", None),
    ("POST", "/payments/ch_BBfault/refund", {"amount": 100}),
    ("PATCH", "/customers/00000000-0000-0000-0000-000000000000", {"name": "Jenny"}),
    ("POST", "/subscriptions/sub_BBfault/cancel", {"at_period_end": True}),
    ("POST", "/customers/00000000-0000-0000-0000-000000000000/courses/course_a/grant", None),
    ("POST", "/reconciliations", {"dry_run": True}),
    ("GET", "/reconciliations/00000000-0000-0000-0000-000000000000", None),
]


def assert_every_route_503_fast(web):
    for method, path, body in ADMIN_CALLS:
        r, took = timed(method, web.url + "/admin/api" + path, json=body, headers=AUTH)
        assert (r.status_code, r.json()) == (503, {"error": "database unavailable, retry later"}), (path, r.text)
        assert took < FAST, (path, took)
    body, headers = webhook(1)
    r, took = timed("POST", web.url + "/webhooks/stripe", data=body, headers=headers)
    assert r.status_code == 503 and isinstance(r.json()["error"], str), r.text
    assert took < FAST, took
    for path in ("/readyz", "/metrics"):
        r, took = timed("GET", web.url + path)
        assert r.status_code == 503 and isinstance(r.json()["error" if path == "/metrics" else "down"], (str, list))
        assert took < FAST, (path, took)


def assert_recovers(web, timeout: float = 30):
    """Every gunicorn worker process answers again (each finds out on its own): several answers in a row,
    for longer than the breaker's cooldown. The answers may all come from one worker; another that got
    no request meanwhile refuses for at most the cooldown after its own last failure, which then lies
    before the streak (domain/db.py)."""
    deadline, in_a_row, streak_start = time.time() + timeout, 0, time.time()
    while in_a_row < 6 or time.time() - streak_start < WEB_BREAKER_COOLDOWN + 0.2:
        assert time.time() < deadline, f"not recovered within {timeout}s"
        started = time.time()
        r = requests.get(web.url + "/admin/api/customers?q=jenny", headers=AUTH, timeout=10)
        if r.status_code != 200:
            in_a_row = 0
        else:
            streak_start = started if in_a_row == 0 else streak_start
            in_a_row += 1
        time.sleep(0.05 if in_a_row else 0.5)
    assert requests.get(web.url + "/readyz", timeout=10).status_code == 200
    body, headers = webhook(2)
    assert requests.post(web.url + "/webhooks/stripe", data=body, headers=headers, timeout=10).status_code == 200


@pytest.mark.parametrize("hang", [False, True], ids=["refused", "hanging"])
def test_postgresql_down_every_route_answers_503_within_seconds_then_recovers(svc, proxied, hang):
    body, headers = webhook(0)
    assert requests.post(proxied.url + "/webhooks/stripe", data=body, headers=headers, timeout=10).status_code == 200

    proxied.pg.cut(hang=hang)
    assert_every_route_503_fast(proxied)
    assert requests.get(proxied.url + "/healthz", timeout=AT_ONCE).status_code == 200

    proxied.pg.restore()
    assert_recovers(proxied)


def test_health_and_readiness_answer_at_once_while_webhooks_wait_on_a_hanging_database(svc, proxied):
    proxied.pg.cut(hang=True)
    with ThreadPoolExecutor(8) as pool:
        posts = [pool.submit(timed, "POST", proxied.url + "/webhooks/stripe", data=body, headers=headers)
                 for body, headers in (webhook(10 + n) for n in range(6))]
        time.sleep(0.3)  # the webhooks are in flight, waiting on the database
        healthz, took = timed("GET", proxied.url + "/healthz")
        assert healthz.status_code == 200 and took < AT_ONCE, took
        readyz, took = timed("GET", proxied.url + "/readyz")
        assert readyz.status_code == 503 and took < AT_ONCE, took
        assert "postgresql" in readyz.json()["down"]
        for post in posts:
            r, took = post.result()
            assert r.status_code == 503 and took < FAST, (r.status_code, r.text, took)
    proxied.pg.restore()
    assert_recovers(proxied)


def test_redis_down_replay_and_readiness_answer_503_within_seconds_then_recover(svc, proxied):
    body, headers = webhook(20)
    assert requests.post(proxied.url + "/webhooks/stripe", data=body, headers=headers, timeout=10).status_code == 200

    for n, hang in enumerate((False, True)):  # refused, then accepting TCP and never answering
        proxied.redis.cut(hang=hang)
        r, took = timed("POST", proxied.url + "/admin/api/events/evt_BBfault20/replay", headers=AUTH)
        assert r.status_code == 503 and "redis" in r.json()["error"].lower(), r.text
        assert took < FAST, (hang, took)
        r, took = timed("GET", proxied.url + "/readyz")
        assert r.status_code == 503 and r.json()["down"] == ["redis"] and took < FAST, (hang, r.text, took)
        r, took = timed("GET", proxied.url + "/metrics")
        assert (r.status_code, r.json()) == (503, {"error": "redis unavailable, retry later"}), r.text
        assert took < FAST, (hang, took)
        # A webhook is still stored (the worker's sweep enqueues it later): 200, quickly.
        body, headers = webhook(21 + n)
        r, took = timed("POST", proxied.url + "/webhooks/stripe", data=body, headers=headers)
        assert r.status_code == 200 and took < FAST, (hang, r.text, took)
        proxied.redis.restore()
        assert_recovers(proxied)
        r = requests.post(proxied.url + "/admin/api/events/evt_BBfault20/replay", headers=AUTH, timeout=10)
        assert r.status_code == 202, r.text
