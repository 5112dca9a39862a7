"""No secret in any output. A web server and a worker of their own, configured with recognisable
secrets (webhook secret, Stripe key, admin token, link secret, a database password), their
PostgreSQL and Redis behind proxies the test cuts, go through a forced 500, a PostgreSQL outage, a
Redis outage and a Stripe 401; CLI commands run with bad URLs holding passwords. No process's
stdout or stderr, and no HTTP answer, may contain any of the secrets. The web and worker logs are
JSON lines with a timestamp, the request id on request lines and the event id on event lines.
"""
from __future__ import annotations

import json
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import psycopg
import pytest
import redis
import requests
from psycopg.conninfo import conninfo_to_dict

from teachery_sync.embedded import free_port
from tests.blackbox.service import DATABASE_URL, REDIS_URL, Service
from tests.fake_stripe import FakeStripeServer
from tests.support import truncate_all
from tests.tcp_proxy import TcpProxy
from tests.worker_processes import kill_group

WEBHOOK_SECRET = "whsec_LEAKwebhook5f3a9c"
STRIPE_KEY = "sk_test_LEAKstripekey7d21e"
ADMIN = "LEAKadmintoken93b1"
LINK_SECRET = "LEAKlinksecret4c8d"
PG_PASSWORD = "LEAKpgpassword62af"
REDIS_PASSWORD = "LEAKredispassword0e7b"
SCOPED = "LEAKscopedtoken51d0"  # a scoped token of ADMIN_TOKENS
SENTRY_KEY = "LEAKsentrykey8e2f"  # the DSN's key (nothing listens at its address)
SECRETS = (WEBHOOK_SECRET, STRIPE_KEY, ADMIN, LINK_SECRET, PG_PASSWORD, REDIS_PASSWORD, SCOPED, SENTRY_KEY)


class OwnService(Service):
    """The black-box Service, signing with our secret and calling the admin API with our token."""

    answers: list[str]

    def post_event(self, event, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None):
        r = super().post_event(event, secret=secret, timestamp=timestamp)
        self.answers.append(r.text)
        return r

    def admin(self, method: str, path: str, body=None, *, headers: dict | None = None):
        status, data = super().admin(method, path, body, headers={"Authorization": f"Bearer {ADMIN}",
                                                                  **(headers or {})})
        self.answers.append(json.dumps(data) if not isinstance(data, str) else data)
        return status, data

    def get(self, path: str) -> requests.Response:
        r = requests.get(self.url + path, timeout=30)
        self.answers.append(r.text)
        return r


@pytest.fixture
def own(service, tmp_path):
    """Our own web server (2 gunicorn workers) and worker, PostgreSQL and Redis through proxies.

    The session's worker is stopped meanwhile: it shares the queue (`svc` starts it again).
    """
    kill_group(service.worker, signal.SIGTERM)
    db = conninfo_to_dict(DATABASE_URL)
    redis_parts = urlsplit(REDIS_URL)
    with TcpProxy(int(db.get("port") or 5432), db.get("host") or "127.0.0.1") as pg, \
            TcpProxy(redis_parts.port or 6379, redis_parts.hostname or "127.0.0.1") as rd, \
            FakeStripeServer() as stripe_server:
        svc = OwnService(stripe_server, tmp_path)
        svc.answers = []
        svc.pg, svc.rd = pg, rd
        svc.env.pop("LOG_FORMAT", None)  # the default: JSON
        svc.env.update({
            # PostgreSQL here trusts local connections: the password is ignored, yet it is in the URL.
            "DATABASE_URL": f"postgresql://{db.get('user', 'root')}:{PG_PASSWORD}@127.0.0.1:{pg.port}/{db['dbname']}",
            "REDIS_URL": f"redis://127.0.0.1:{rd.port}{redis_parts.path or '/0'}",
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, "STRIPE_API_KEY": STRIPE_KEY, "ADMIN_TOKEN": ADMIN,
            "TEACHERY_LINK_SECRET": LINK_SECRET, "ADMIN_TOKENS": f"support:{SCOPED}:acct_1LeakCreator",
            "SENTRY_DSN": f"http://{SENTRY_KEY}@127.0.0.1:{free_port()}/1",
        })
        truncate_all(DATABASE_URL)
        redis.Redis.from_url(REDIS_URL).flushdb()
        try:
            svc.start_web()
            svc.start_worker()
            yield svc
        finally:
            svc.stop_all()


def wait_for_status(own: OwnService, event_id: str, status: str, timeout: float = 20) -> dict:
    deadline = time.time() + timeout
    while True:
        code, body = own.admin("GET", f"/events/{event_id}")
        if code == 200 and body["status"] == status:
            return body
        assert time.time() < deadline, (code, body)
        time.sleep(0.2)


def is_one_line_error(done) -> bool:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return (done.returncode != 0 and bool(lines) and lines[-1].startswith("error: ")
            and "Traceback" not in done.stdout + done.stderr)


def test_no_secret_in_any_output(own):
    customer_id, charge = _a_purchase_applied(own)
    refunded, key_runs = _stripe_refuses_the_key(own, customer_id, charge)
    _a_table_gone_for_a_moment(own, customer_id, charge, refunded)
    outage_events = _postgres_down(own, customer_id, charge, refunded)
    _redis_down(own, outage_events, refunded)
    _console_api_and_refused_webhooks(own, customer_id, refunded, outage_events)
    bad_url_runs = _commands_with_bad_urls(own)

    own.stop_all()
    logs = {path.name: path.read_text() for path in own.logdir.glob("*.log")}
    outputs = {**logs, **{f"cli-{i}": done.stdout + done.stderr for i, done in enumerate(key_runs + bad_url_runs)},
               **{f"answer-{i}": text for i, text in enumerate(own.answers)}}
    leaks = {name: [s for s in SECRETS if s in text] for name, text in outputs.items()}
    assert not {name: found for name, found in leaks.items() if found}, \
        {name: text for name, text in outputs.items() if leaks[name]}
    assert not [(done.args, done.stderr) for done in bad_url_runs if not is_one_line_error(done)]
    _logs_are_json_lines_with_ids(logs, refunded["id"])


def _a_purchase_applied(own) -> tuple[str, dict]:
    """Business as usual: a purchase, applied; (our customer's id, the charge)."""
    fake = own.fake
    cus = fake.create_customer(None, "Ada Lovelace", "ada@example.com")
    charge = fake.buy_course(None, cus["id"], 4900, "course_engines")
    own.deliver(fake.take_events())
    own.wait_settled()
    customer_id = own.profile(cus["id"])["id"]
    assert own.admin("GET", f"/customers/{customer_id}/links")[0] == 200
    return customer_id, charge


def _stripe_refuses_the_key(own, customer_id: str, charge: dict) -> tuple[dict, list]:
    """Stripe answers 401 (a rolled key): to an admin action, a handler's fetch and two commands; (the
    charge.refunded event left waiting, the commands' runs)."""
    fake = own.fake
    fake.api_key_revoked = True
    status, body = own.admin("PATCH", f"/customers/{customer_id}", {"name": "Ada King"})
    assert status == 503, body
    fake.refund(None, charge["id"], 1000)
    [refunded] = [e for e in fake.take_events() if e["type"] == "charge.refunded"]
    own.deliver([refunded])  # its refund is unknown: the worker asks the API for the charge's refunds
    waiting = wait_for_status(own, refunded["id"], "waiting")
    assert "API key" in waiting["last_error"], waiting
    since = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    runs = [own.cli("reconcile", "--dry-run"), own.cli("backfill", "--since", since)]
    assert all(done.returncode != 0 for done in runs), runs
    fake.api_key_revoked = False
    return refunded, runs


def _a_table_gone_for_a_moment(own, customer_id: str, charge: dict, refunded: dict) -> None:
    """A genuine unhandled error: a table the admin API reads is gone for a moment."""
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute("ALTER TABLE customers RENAME TO customers_away")
        try:
            status, body = own.admin("GET", f"/customers/{customer_id}/links")
            own.admin("POST", f"/payments/{charge['id']}/refund", {"amount": 100})
            own.admin("POST", f"/events/{refunded['id']}/replay")
        finally:
            conn.execute("ALTER TABLE customers_away RENAME TO customers")
    assert status >= 500, body


def _postgres_down(own, customer_id: str, charge: dict, refunded: dict) -> list[dict]:
    """PostgreSQL down: admin routes, a webhook, readiness (status codes are another story's); the events
    of a customer made meanwhile."""
    own.fake.create_customer(None, "Grace Hopper", "grace@example.com")
    outage_events = own.fake.take_events()
    own.pg.cut()
    calls = [lambda: own.admin("GET", f"/customers/{customer_id}/links"),
             lambda: own.admin("POST", f"/payments/{charge['id']}/refund", {"amount": 100}),
             lambda: own.admin("POST", f"/events/{refunded['id']}/replay"),
             lambda: own.post_event(outage_events[0]),
             lambda: own.get("/readyz")]
    with ThreadPoolExecutor(len(calls)) as pool:
        list(pool.map(lambda call: call(), calls))
    own.pg.restore()
    return outage_events


def _redis_down(own, outage_events: list[dict], refunded: dict) -> None:
    """Redis down: a webhook (stored, not queued), a replay, readiness."""
    own.rd.cut()
    own.post_event(outage_events[-1])
    own.admin("POST", f"/events/{refunded['id']}/replay")
    assert own.get("/readyz").status_code == 503
    time.sleep(2)  # the worker notices
    own.rd.restore()


def _console_api_and_refused_webhooks(own, customer_id: str, refunded: dict, outage_events: list[dict]) -> None:
    """The console: a wrong token, then each token signed in, every page; the scoped token on the API;
    metrics, the OpenAPI document; refused webhooks."""
    for token in ("not-a-token", ADMIN, SCOPED):
        browser = requests.Session()
        form = browser.get(own.url + "/admin/sign-in", timeout=30).text
        csrf = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        own.answers.append(browser.post(own.url + "/admin/sign-in", data={"token": token, "csrf_token": csrf},
                                        timeout=30).text)
        for page in ("/admin/customers?q=ada", f"/admin/customers/{customer_id}", "/admin/events",
                     f"/admin/events/{refunded['id']}", "/admin/reconciliations", "/admin/health", "/admin/rq/",
                     "/admin/events/replay-failed", f"/admin/customers/{customer_id}/links"):
            own.answers.append(browser.get(own.url + page, timeout=30).text)
    scoped = requests.get(own.url + "/admin/api/customers?q=ada", headers={"Authorization": f"Bearer {SCOPED}"},
                          timeout=30)
    assert scoped.status_code == 200 and scoped.json() == {"customers": []}  # another account's customers
    own.answers.append(scoped.text)
    assert own.get("/metrics").status_code == 200
    assert own.admin("GET", "/openapi.json")[0] == 200
    own.post_event(outage_events[0], secret="whsec_not_ours")
    own.post_event(b"not json")


def _commands_with_bad_urls(own) -> list:
    """Command lines with bad URLs, each with a password in it; their runs."""
    closed = free_port()
    bad = [
        ({"REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:{closed}/0"}, [("jobs", "failed"), ("worker", "--burst"),
                                                                          ("clock",)]),
        ({"REDIS_URL": "http://x"}, [("events", "list"), ("worker", "--burst")]),
        ({"REDIS_URL": f"http://user:{REDIS_PASSWORD}@x"}, [("events", "list"), ("web", "--port", str(closed)),
                                                           ("clock",)]),
        ({"DATABASE_URL": f"bob:{PG_PASSWORD}@127.0.0.1/db"}, [("events", "list"), ("migrate",), ("worker",)]),
        ({"DATABASE_URL": f"postgresql://bob:{PG_PASSWORD}@127.0.0.1:notaport/db"}, [("events", "list"),
                                                                                    ("migrate",)]),
    ]
    runs = [own.cli(*args, env=env, timeout=60) for env, commands in bad for args in commands]
    for env in ({"DATABASE_URL": f"bob:{PG_PASSWORD}@127.0.0.1/db"}, {"REDIS_URL": f"http://u:{REDIS_PASSWORD}@x"}):
        runs.append(own.cli("dev", "--port", str(free_port()), "--dev-dir", str(own.logdir / "dev"), env=env))
    return runs


def _logs_are_json_lines_with_ids(logs: dict[str, str], refunded_id: str) -> None:
    """The web and worker logs: JSON lines, each with a timestamp; request and event ids where they belong."""
    web_lines = [json.loads(line) for line in logs["web-0.log"].splitlines() if line.strip()]
    worker_lines = [json.loads(line) for line in logs["worker-1.log"].splitlines() if line.strip()]
    assert all(isinstance(line, dict) and line.get("timestamp") for line in web_lines + worker_lines)
    requests_logged = [line for line in web_lines if line.get("logger") == "gunicorn.access"]
    received = [event for line in web_lines if line["event"] == "events received" for event in line["events"]]
    assert requests_logged and received and all(line.get("request_id") for line in requests_logged + received)
    assert all(event.get("event_id") for event in received)
    [unhandled, *_] = [line for line in web_lines if line["event"] == "unhandled error"]
    assert unhandled["request_id"] and unhandled["exception"], unhandled
    assert not any("locals" in frame for exc in unhandled["exception"] for frame in exc["frames"]), unhandled
    applied = [line for line in worker_lines if line["event"] in ("event applied", "event not applied")]
    assert {line["event_id"] for line in applied} >= {refunded_id}, applied
