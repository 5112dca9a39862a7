"""Stripe's rate limit, per account and shared by every process: real Redis, the fake Stripe over HTTP
(tests/fake_stripe, which answers 429 beyond a rate when asked), and for the processes, real ones
(tests/stripe_caller.py) built by the composition root from their environment."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
import structlog.testing
from redis.backoff import NoBackoff
from redis.retry import Retry

from teachery_sync.bootstrap import build
from tests.fake_stripe import StripeError
from tests.stripe_events import T0, customer, event
from tests.support import ADMIN_TOKEN, ROOT
from tests.tcp_proxy import TcpProxy
from workers.rate_limit import RateLimiter, read_counts
from workers.stripe_api import NotFound, StripeUnavailable

ACCT = "acct_RATE1"
OTHER = "acct_RATE2"


@pytest.fixture
def limited(settings, services, stripe_api):
    """build(settings at `rate` requests per second) → its Stripe client; the services are closed after."""
    made = []

    def _limited(rate: float, **changes):
        svc = build(settings.with_(stripe_max_requests_per_second=rate, **changes), pool_size=1)
        made.append(svc)
        return svc.stripe

    yield _limited
    for svc in made:
        svc.close()


def put_customers(fake, account, *ids):
    for cus in ids:
        fake.create_customer(account, "Jenny Rosen", "jenny@example.com", cus_id=cus)


def most_in_a_second(times: list[float]) -> int:
    """The most requests that arrived within any one second (a window opening at each arrival)."""
    times = sorted(times)
    return max(sum(1 for u in times if t <= u < t + 1.0) for t in times)


def wait_for_429s(services, account, count=1):
    """Until the limiter has been told of `count` 429s of the account (the shared counter says so)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = read_counts(services.redis).get(account)
        if found and found.rate_limited >= count:
            return
        time.sleep(0.005)
    raise AssertionError(f"no 429 of {account} recorded")


def arrivals(fake, *, account=ACCT, customer=None) -> list[dict]:
    return [r for r in fake.calls if r["account"] == account
            and (customer is None or r["path"].endswith(customer))]


def test_two_processes_calling_one_account_stay_within_its_rate_together(settings, services, stripe_api):
    rate = 10
    put_customers(stripe_api, ACCT, "cus_P1", "cus_P2")
    env = {**os.environ, "REDIS_URL": settings.redis_url, "STRIPE_API_BASE": stripe_api.url,
           "STRIPE_API_KEY": "sk_test_123", "STRIPE_MAX_REQUESTS_PER_SECOND": str(rate)}
    callers = [subprocess.Popen([sys.executable, "-m", "tests.stripe_caller", ACCT, cus, "20"], cwd=ROOT, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
               for cus in ("cus_P1", "cus_P2")]
    assert [caller.stdout.readline() for caller in callers] == ["ready\n", "ready\n"]
    for caller in callers:  # go, both at once
        caller.stdin.write("go\n")
        caller.stdin.flush()
    assert [caller.wait(timeout=60) for caller in callers] == [0, 0]
    for caller in callers:
        caller.stdin.close()
        caller.stdout.close()

    first, second = arrivals(stripe_api, customer="cus_P1"), arrivals(stripe_api, customer="cus_P2")
    assert len(first) == len(second) == 20
    assert {r["status"] for r in first + second} == {200}
    assert abs(first[0]["at"] - second[0]["at"]) < 0.5  # they did call at the same time
    times = [r["at"] for r in first + second]
    assert most_in_a_second(times) <= rate + rate  # the rate, plus a burst of one second of it
    # 40 requests, 10 at once and then 10 a second: three seconds, whoever sends them.
    assert max(times) - min(times) >= (40 - rate) / rate - 0.1


def test_accounts_and_the_platform_have_buckets_of_their_own(limited, stripe_api):
    api = limited(5)
    put_customers(stripe_api, ACCT, "cus_A")
    put_customers(stripe_api, OTHER, "cus_B")
    put_customers(stripe_api, None, "cus_C")
    started = time.monotonic()
    for account, cus in ((ACCT, "cus_A"), (OTHER, "cus_B"), (None, "cus_C")):
        for _ in range(5):  # each account's burst: at once, whatever the others spent
            api.retrieve("customer", cus, account=account)
    assert time.monotonic() - started < 0.8
    api.retrieve("customer", "cus_A", account=ACCT)  # the sixth of one account waits for its slot
    assert time.monotonic() - started >= 0.18


def test_a_429_is_waited_out_shared_with_every_client_and_the_rate_then_holds(limited, services, stripe_api):
    rate = 5
    put_customers(stripe_api, ACCT, "cus_A")
    stripe_api.limit_rate(ACCT, rate, retry_after=1, tokens=0)  # someone else just spent the account's second
    first, second = limited(rate), limited(rate)  # two clients, as two processes: they share only Redis
    answers = []
    caller = threading.Thread(target=lambda: answers.append(first.retrieve("customer", "cus_A", account=ACCT)))
    caller.start()
    wait_for_429s(services, ACCT)
    assert second.retrieve("customer", "cus_A", account=ACCT)["id"] == "cus_A"  # waits for the block too
    caller.join(10)
    assert answers and answers[0]["id"] == "cus_A"

    [refused, *after] = arrivals(stripe_api)
    assert refused["status"] == 429 and len(after) == 2
    assert min(r["at"] for r in after) - refused["at"] >= 0.95  # Retry-After: 1, for both clients

    threads = [threading.Thread(target=lambda api=api: [api.retrieve("customer", "cus_A", account=ACCT)
                                                       for _ in range(6)]) for api in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    after = arrivals(stripe_api)[1:]
    assert len(after) == 14 and {r["status"] for r in after} == {200}  # never beyond Stripe's limit again
    assert most_in_a_second([r["at"] for r in after]) <= rate + 1


def test_a_429_without_retry_after_backs_off_and_the_wait_is_bounded(limited, stripe_api):
    put_customers(stripe_api, ACCT, "cus_A")
    stripe_api.limit_rate(ACCT, 0.001, retry_after=None, tokens=0)  # 429 for as long as the test lasts
    api = limited(25)
    api.max_rate_limit_wait = 2.0
    started = time.monotonic()
    with pytest.raises(StripeUnavailable, match="rate limit"):
        api.retrieve("customer", "cus_A", account=ACCT)
    assert time.monotonic() - started <= 2.5
    tries = arrivals(stripe_api)
    assert 2 <= len(tries) <= 4 and {r["status"] for r in tries} == {429}  # 0.5 s, then 1, 2 … with jitter
    gaps = [b["at"] - a["at"] for a, b in zip(tries, tries[1:], strict=False)]
    assert gaps[0] >= 0.25 and all(later > earlier for earlier, later in zip(gaps, gaps[1:], strict=False))


def test_a_long_retry_after_gives_up_at_once(limited, stripe_api):
    put_customers(stripe_api, ACCT, "cus_A")
    stripe_api.limit_rate(ACCT, 0.001, retry_after=30, tokens=0)
    api = limited(25)
    api.max_rate_limit_wait = 5.0
    started = time.monotonic()
    with pytest.raises(StripeUnavailable, match="rate limit"):
        api.retrieve("customer", "cus_A", account=ACCT)
    assert time.monotonic() - started < 1 and len(arrivals(stripe_api)) == 1


def test_a_lock_timeout_is_retried_by_us_alone_and_does_not_block_the_account(limited, services, stripe_api,
                                                                             client):
    """Stripe marks a lock timeout `Stripe-Should-Retry: true`, which stripe-python would retry on its own
    (max_network_retries): ours is the only retry, counted, and only the call that met it waits."""
    put_customers(stripe_api, ACCT, "cus_A", "cus_B")
    api = limited(25, stripe_network_retries=2)
    stripe_api.fail_next.append(("GET", "/v1/customers/cus_A", StripeError(
        429, "invalid_request_error", "This object cannot be accessed right now (fake).", "lock_timeout",
        {"Stripe-Should-Retry": "true"})))
    caller = threading.Thread(target=api.retrieve, args=("customer", "cus_A"), kwargs={"account": ACCT})
    caller.start()
    wait_for_429s(services, ACCT)
    started = time.monotonic()
    api.retrieve("customer", "cus_B", account=ACCT)
    assert time.monotonic() - started < 0.2  # the account is not blocked
    caller.join(10)
    assert [r["status"] for r in arrivals(stripe_api, customer="cus_A")] == [429, 200]
    text = client.get("/metrics").get_data(as_text=True)
    assert f'teachery_stripe_rate_limited_total{{account="{ACCT}"}} 1.0' in text


def test_metrics_count_requests_429s_and_waits_per_account(limited, stripe_api, client):
    put_customers(stripe_api, ACCT, "cus_A")
    put_customers(stripe_api, None, "cus_C")
    stripe_api.limit_rate(ACCT, 5, retry_after=1, tokens=0)
    api = limited(5)
    api.retrieve("customer", "cus_A", account=ACCT)  # a 429, a second's wait, then the answer
    for _ in range(3):
        api.retrieve("customer", "cus_C")
    with pytest.raises(NotFound):  # no such account in Stripe; counted under `other`
        api.retrieve("customer", "cus_C", account="acct_with spaces")
    text = client.get("/metrics").get_data(as_text=True)
    lines = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
             for line in text.splitlines() if line.startswith("teachery_stripe_")}
    assert lines[f'teachery_stripe_requests_total{{account="{ACCT}"}}'] == 2
    assert lines[f'teachery_stripe_rate_limited_total{{account="{ACCT}"}}'] == 1
    assert 0.95 <= lines[f'teachery_stripe_rate_limit_wait_seconds_total{{account="{ACCT}"}}'] < 2
    assert lines['teachery_stripe_requests_total{account="platform"}'] == 3
    assert lines['teachery_stripe_rate_limited_total{account="platform"}'] == 0
    assert lines['teachery_stripe_requests_total{account="other"}'] == 1
    assert not any("spaces" in line for line in lines)


def test_calls_go_through_unthrottled_while_redis_is_down(settings, services, stripe_api):
    put_customers(stripe_api, ACCT, "cus_A")
    with TcpProxy(redis.Redis.from_url(settings.redis_url).connection_pool.connection_kwargs["port"]) as proxy:
        db = settings.redis_url.rsplit("/", 1)[1]
        svc = build(settings.with_(redis_url=f"redis://127.0.0.1:{proxy.port}/{db}",
                                   stripe_max_requests_per_second=5), pool_size=1)
        try:
            api = svc.stripe
            for _ in range(5):
                api.retrieve("customer", "cus_A", account=ACCT)  # the burst: the bucket is empty now
            proxy.cut(hang=True)  # accepts connections and never answers
            started = time.monotonic()
            with structlog.testing.capture_logs() as logs:
                for _ in range(20):  # throttled: four seconds
                    api.retrieve("customer", "cus_A", account=ACCT)
            assert time.monotonic() - started < 3  # one Redis timeout (a second), then unthrottled (not four)
            warnings = [line for line in logs if "unthrottled" in line["event"]]
            assert len(warnings) == 1 and warnings[0]["log_level"] == "warning"
            assert len(arrivals(stripe_api)) == 25 and {r["status"] for r in stripe_api.calls} == {200}
        finally:
            svc.close()



def test_an_admin_action_waits_at_most_ten_seconds_for_the_rate_limit_then_answers_503(
        settings, services, send, stripe_api, admin):
    """The web process bounds the wait lower than workers do: a request thread is never held a minute."""
    from webhooks.app import create_app

    stripe_api.put(customer("cus_Busy", email="busy@example.com", name="Busy Bee"))
    send(event("customer.created", customer("cus_Busy", email="busy@example.com", name="Busy Bee"), created=T0))
    status, profile = admin("GET", "/stripe-customers/cus_Busy")
    assert status == 200, profile
    stripe_api.limit_rate(None, 0.001, retry_after=12, tokens=0)  # workers would wait that long; the web not
    web = build(settings, pool_size=2, web=True).open()
    try:
        app = create_app(services=web)
        started = time.monotonic()
        answer = app.test_client().patch(f"/admin/api/customers/{profile['id']}", json={"name": "Busy B."},
                                          headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert time.monotonic() - started < 2
    finally:
        web.close()
    assert answer.status_code == 503 and "rate limit" in answer.get_json()["error"], answer.get_json()
    assert [r["status"] for r in stripe_api.writes("/v1/customers")] == [429]
    assert admin("GET", "/stripe-customers/cus_Busy")[1]["name"] == "Busy Bee"


def test_the_limiter_throttles_again_when_redis_is_back_and_warns_once(settings, services):
    port = redis.Redis.from_url(settings.redis_url).connection_pool.connection_kwargs["port"]
    db = settings.redis_url.rsplit("/", 1)[1]
    with TcpProxy(port) as proxy:
        limiter = RateLimiter(redis.Redis.from_url(f"redis://127.0.0.1:{proxy.port}/{db}", socket_timeout=1,
                                                   socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)),
                              2, redis_cooldown=0.1)
        try:
            assert [limiter.reserve(ACCT, most=60) for _ in range(2)] == [0, 0]  # the burst
            proxy.cut()  # refused: every probe fails at once
            with structlog.testing.capture_logs() as logs:
                for _ in range(5):
                    assert limiter.reserve(ACCT, most=60) == 0  # unthrottled
                    time.sleep(0.15)  # past the cooldown: each one asks Redis again, and fails
            assert len([line for line in logs if "unthrottled" in line["event"]]) == 1
            proxy.restore()
            time.sleep(0.15)
            waits = [limiter.reserve(ACCT, most=60) for _ in range(3)]
            assert waits[2] >= 0.45 and abs(waits[2] - waits[1] - 0.5) < 0.05  # slots half a second apart
            assert read_counts(services.redis)[ACCT].requests == 5
        finally:
            limiter.close()


@pytest.mark.parametrize("command", [("events", "list"), ("web", "--port", "1"), ("worker", "--burst")])
def test_a_bad_rate_stops_every_command_with_one_line_naming_it(settings, command):
    done = subprocess.run([str(Path(sys.executable).parent / "teachery-sync"), *command], cwd=ROOT,
                          env={**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
                               "STRIPE_WEBHOOK_SECRET": "whsec_x", "STRIPE_MAX_REQUESTS_PER_SECOND": "-25"},
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "error: STRIPE_MAX_REQUESTS_PER_SECOND must be a positive number (requests per second), got '-25'"]
