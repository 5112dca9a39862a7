"""Killed processes: a SIGKILLed worker loses nothing once a new one runs, and takes its reconciliation
worker with it; a SIGKILLed gunicorn worker process leaves the receiver answering, with every event
stored and applied exactly once."""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import requests

from tests.blackbox.helpers import expected_payment, payment_view
from tests.support import unsettled
from tests.worker_processes import alive, children_of, wait_for

ACCT = "acct_1BBCreatorK"


def many_histories(fake, n: int):
    made = []
    for i in range(n):
        cus = fake.create_customer(ACCT, f"Student {i}", f"student{i}@example.com")
        charge = fake.buy_course(ACCT, cus["id"], 1000 + i, f"course_{i % 3}")
        fake.refund(ACCT, charge["id"], 100)
        sub, sub_charge = fake.subscribe(ACCT, cus["id"], 700, "course_sub")
        fake.update_subscription(ACCT, sub["id"], {"cancel_at_period_end": True})
        made.append((cus, charge, sub_charge))
    return made


def check_all(svc, made):
    for cus, charge, sub_charge in made:
        profile = svc.profile(cus["id"], ACCT)
        payments = {p["stripe_charge_id"]: p for p in profile["payments"]}
        assert set(payments) == {charge["id"], sub_charge["id"]}
        for ch in payments:
            assert payment_view(payments[ch]) == expected_payment(svc.fake, ACCT, ch)
        assert profile["subscriptions"][0]["cancel_at_period_end"] is True
        assert len(profile["enrollments"]) == 2


def send_with_retries(svc, event):
    """As Stripe does: a connection that dies is retried."""
    for _ in range(20):
        try:
            r = svc.post_event(event)
        except requests.RequestException:  # refused, reset, or cut mid-answer by the kill
            time.sleep(0.05)
            continue
        if r.status_code == 200:
            return r
        assert r.status_code in (502, 503), (r.status_code, r.text)
        time.sleep(0.05)
    raise AssertionError(f"{event['id']} never accepted")


def test_sigkill_worker_while_events_flow(svc):
    made = many_histories(svc.fake, 12)
    events = svc.fake.take_events()  # ~170 events
    killed = threading.Event()

    def kill_when_busy():
        deadline = time.time() + 20
        while time.time() < deadline:
            statuses = [e["status"] for e in svc.events()]
            if sum(s in ("processed", "ignored") for s in statuses) >= 10:
                os.killpg(svc.worker.pid, signal.SIGKILL)
                killed.set()
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    for event in events:
        send_with_retries(svc, event)
    killer.join()
    assert killed.is_set(), "the worker finished before it could be killed"
    svc.worker.wait(timeout=10)
    svc.start_worker()
    # Normally seconds; the worker's own sweep re-enqueues a killed job's events after 60 s at worst.
    ledger = svc.wait_settled(timeout=80)
    assert len(ledger) == len(events)
    assert unsettled(ledger) == []
    check_all(svc, made)


def test_sigkill_gunicorn_worker_mid_traffic(svc):
    made = many_histories(svc.fake, 8)
    events = svc.fake.take_events()
    deadline = time.time() + 15  # both gunicorn workers booted (under load the second may lag)
    while len(set(children_of(svc.web.pid))) < 2 and time.time() < deadline:
        time.sleep(0.1)
    before = set(children_of(svc.web.pid))
    assert len(before) == 2, before
    victim = sorted(before)[0]
    errors: list = []

    def traffic(part):
        try:
            for event in part:
                send_with_retries(svc, event)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=traffic, args=(events[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    os.kill(victim, signal.SIGKILL)
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    # gunicorn replaced the killed worker and the receiver still answers.
    deadline = time.time() + 15
    while time.time() < deadline and len(set(children_of(svc.web.pid)) - {victim}) < 2:
        time.sleep(0.1)
    assert requests.get(svc.url + "/readyz", timeout=5).status_code == 200
    # Every event again: all duplicates now; nothing was lost.
    for event in events[::5]:
        assert svc.post_event(event).json() == {"received": True, "duplicate": True}
    ledger = svc.wait_settled(timeout=45)
    assert sorted(e["id"] for e in ledger) == sorted(e["id"] for e in events)
    assert all(e["attempts"] >= 1 for e in ledger)
    check_all(svc, made)


def _supervised_child(worker_pid: int) -> int | None:
    """The reconciliation worker that `teachery-sync worker` (worker_pid) started, if it runs."""
    for pid in children_of(worker_pid):
        try:
            if b"--supervised" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
                return pid
        except OSError:
            continue
    return None


def test_a_sigkilled_worker_takes_its_busy_reconciliation_worker_with_it(svc):
    """The reconciliation worker, in the middle of a run, dies with its parent at once (not after
    finishing the run: it would take the next worker's jobs meanwhile); the next worker resumes the run."""
    held = svc.fake.hold("/v1/customers")
    try:
        assert wait_for(lambda: _supervised_child(svc.worker.pid), 30), "no reconciliation worker started"
        second = _supervised_child(svc.worker.pid)
        status, run = svc.admin("POST", "/reconciliations", {"dry_run": True})
        assert status == 202, run
        assert held.asked.wait(30), "the run never asked Stripe for customers"
        os.kill(svc.worker.pid, signal.SIGKILL)  # the parent alone, not its process group
        svc.worker.wait(timeout=10)
        assert wait_for(lambda: not alive(second), 5), "the reconciliation worker outlived its SIGKILLed parent"
    finally:
        held.release()
    svc.start_worker()
    assert wait_for(lambda: svc.admin("GET", f"/reconciliations/{run['id']}")[1]["status"] == "succeeded", 90), \
        svc.admin("GET", f"/reconciliations/{run['id']}")
    assert svc.admin("GET", f"/reconciliations/{run['id']}")[1]["resumed"] == 1
