"""GET /metrics of the real service: the counters of both gunicorn workers and of the RQ worker are summed
(whichever gunicorn worker answers), and a SIGKILLed process's counts are neither lost nor counted twice."""
from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import requests

from tests.blackbox.service import sign
from tests.stripe_events import T0, customer, event
from tests.worker_processes import children_of

SAMPLE = re.compile(r"^(teachery_\S+?)(\{.*\})? (\S+)$", re.M)
NEW = 'teachery_webhooks_received_total{outcome="new"}'
PROCESSED = 'teachery_events_applied_total{outcome="processed",type="customer.created"}'


def scrape(svc) -> dict[str, float]:
    # a new connection each time: either gunicorn worker may answer
    text = requests.get(svc.url + "/metrics", timeout=10, headers={"Connection": "close"}).text
    return {name + (labels or ""): float(value) for name, labels, value in SAMPLE.findall(text)}


def post_new_connections(svc, events, threads: int = 8) -> None:
    errors: list = []

    def post(part):
        for evt in part:
            body = json.dumps(evt).encode()
            r = requests.post(svc.url + "/webhooks/stripe", data=body, timeout=15,
                              headers={"Stripe-Signature": sign(body), "Connection": "close"})
            if r.status_code != 200:
                errors.append((r.status_code, r.text))

    workers = [threading.Thread(target=post, args=(events[i::threads],)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=60)
    assert not errors, errors


def people(prefix: str, n: int) -> list[dict]:
    return [event("customer.created", customer(f"cus_{prefix}{i}", email=f"{prefix.lower()}{i}@example.com",
                                               name=f"P {i}"), created=T0 + i) for i in range(n)]


def wait_for_web_workers(svc, exclude=()) -> set[int]:
    deadline = time.time() + 20
    while time.time() < deadline:
        kids = set(children_of(svc.web.pid)) - set(exclude)
        if len(kids) >= 2:
            return kids
        time.sleep(0.1)
    raise AssertionError("gunicorn did not run two workers")


def wait_for(svc, key: str, value: float, timeout: float = 30) -> dict:
    deadline = time.time() + timeout
    while True:
        found = scrape(svc)
        if found.get(key, 0.0) == value or time.time() > deadline:
            assert found.get(key, 0.0) == value, (key, found.get(key), value)
            return found
        time.sleep(0.2)


def test_two_gunicorn_workers_and_the_rq_worker_are_summed_and_survive_a_kill(svc):
    metrics_dir = Path(svc.env["PROMETHEUS_MULTIPROC_DIR"])
    web_workers = wait_for_web_workers(svc)
    before = scrape(svc)

    post_new_connections(svc, people("Summed", 60))
    # both gunicorn workers took webhooks (each counts in its own file) and every scrape, whichever
    # worker answers it, sees the sum
    counting = {int(p.stem.split("_")[1]) for p in metrics_dir.glob("counter_*.db")}
    assert web_workers <= counting, (web_workers, counting)
    for _ in range(6):
        assert scrape(svc)[NEW] - before.get(NEW, 0.0) == 60
    svc.wait_settled()
    wait_for(svc, PROCESSED, before.get(PROCESSED, 0.0) + 60)  # the RQ worker's counts, on the web's /metrics

    # A gunicorn worker SIGKILLed: its counts stay (its file is kept), and its successor adds its own.
    victim = sorted(web_workers)[0]
    os.kill(victim, signal.SIGKILL)
    wait_for_web_workers(svc, exclude={victim})
    assert scrape(svc)[NEW] - before.get(NEW, 0.0) == 60
    post_new_connections(svc, people("After", 20))
    assert scrape(svc)[NEW] - before.get(NEW, 0.0) == 80

    # The RQ worker SIGKILLed and started again: what it applied is still counted, once.
    svc.wait_settled()
    wait_for(svc, PROCESSED, before.get(PROCESSED, 0.0) + 80)
    svc.worker.send_signal(signal.SIGKILL)
    svc.worker.wait(timeout=10)
    assert scrape(svc)[PROCESSED] - before.get(PROCESSED, 0.0) == 80
    svc.ensure_worker()
    post_new_connections(svc, people("Later", 5), threads=1)
    svc.wait_settled()
    wait_for(svc, PROCESSED, before.get(PROCESSED, 0.0) + 85)
