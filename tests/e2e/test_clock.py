"""`teachery-sync clock`, the real process: it enqueues the scheduled reconciliation runs at their time
(UTC, whatever the machine's time zone), two clocks enqueue each slot twice yet a real worker makes one
run of it, and it stops on SIGTERM. (A schedule of `* * * * *`: the test waits for the next minute.)"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from psycopg.rows import dict_row

from tests.support import ROOT, TEST_DATABASE_URL, TEST_REDIS_URL
from tests.tcp_proxy import TcpProxy
from tests.worker_processes import kill_group, start_worker, wait_for
from workers.queueing import RECONCILIATION_QUEUE_NAME, reconciliation_queue

EVERY_MINUTE = "* * * * *"


def start_clock(log_path: Path, **env: str) -> subprocess.Popen:
    """`teachery-sync clock` in its own process group, JSON log lines in log_path; TZ far from UTC."""
    env = {**os.environ, "DATABASE_URL": TEST_DATABASE_URL, "REDIS_URL": TEST_REDIS_URL, "LOG_FORMAT": "json",
           "TZ": "Asia/Kolkata", "PYTHONUNBUFFERED": "1", **env}
    return subprocess.Popen([sys.executable, "-m", "teachery_sync.cli", "clock"], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def lines(log_path: Path) -> list[dict]:
    found = []
    for line in log_path.read_text().splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            found.append({"event": line})
    return found


def started(log_path: Path) -> dict | None:
    return next((line for line in lines(log_path) if line["event"] == "clock started"), None)


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=15)
    finally:
        kill_group(proc)


def test_the_clock_says_its_schedules_in_utc_and_stops_on_sigterm(tmp_path, services):
    log_path = tmp_path / "clock.log"
    clock = start_clock(log_path, RECONCILE_FULL_SCHEDULE="")
    try:
        assert wait_for(lambda: started(log_path), 20), log_path.read_text()
        line = started(log_path)
        nightly = datetime.fromisoformat(line["schedules"]["nightly"]["next_at"])
        assert (nightly.hour, nightly.minute, nightly.utcoffset()) == (3, 0, UTC.utcoffset(None))
        assert 0 < (nightly - datetime.now(UTC)).total_seconds() <= 24 * 3600
        assert line["schedules"]["nightly"]["cron"] == "0 3 * * *" and line["off"] == ["weekly"]
    finally:
        status = stop(clock)
    assert status == 0
    assert lines(log_path)[-1]["event"] == "clock stopped"
    assert reconciliation_queue(services.queue).count == 0


def test_sigterm_stops_a_clock_waiting_for_redis(tmp_path, services):
    log_path = tmp_path / "clock.log"
    redis_url = urlsplit(TEST_REDIS_URL)
    with TcpProxy(redis_url.port or 6379, redis_url.hostname) as proxy:
        clock = start_clock(log_path, REDIS_URL=redis_url._replace(netloc=f"127.0.0.1:{proxy.port}").geturl())
        try:
            assert wait_for(lambda: started(log_path), 20), log_path.read_text()
            proxy.cut()
            time.sleep(0.5)
            began = time.monotonic()
            assert stop(clock) == 0
            assert time.monotonic() - began < 10
        finally:
            kill_group(clock)
    # which of its two last lines depends on whether the clock had touched Redis since the cut (it sleeps
    # between slots): either way it stopped at once with status 0, which is the point
    assert lines(log_path)[-1]["event"].startswith("clock stopped"), log_path.read_text()


def test_a_malformed_schedule_or_no_redis_stops_the_clock_with_one_line(tmp_path):
    for env, said in (({"RECONCILE_SCHEDULE": "0 3 * *"}, "RECONCILE_SCHEDULE must be a cron expression"),
                      ({"REDIS_URL": "redis://127.0.0.1:9/0"}, "error: cannot reach Redis at redis://127.0.0.1:9/0")):
        log_path = tmp_path / "clock.log"
        clock = start_clock(log_path, **env)
        assert clock.wait(timeout=20) == 1
        output = log_path.read_text().strip()
        assert said in output and len(output.splitlines()) == 1, output


@pytest.mark.slow  # a minute or half of one: `make test-all`
def test_two_clocks_one_run_per_slot_run_by_a_real_worker(tmp_path, services, stripe_api):
    """The second clock reaches Redis through a proxy that is cut over the minute: it enqueues late, once
    Redis is back, and its jobs still belong to that minute's slot."""
    if datetime.now(UTC).second > 50:  # both clocks must start within one minute, to wait for one slot
        time.sleep(61 - datetime.now(UTC).second)
    schedules = {"RECONCILE_SCHEDULE": EVERY_MINUTE, "RECONCILE_FULL_SCHEDULE": EVERY_MINUTE}
    logs = [tmp_path / "clock-1.log", tmp_path / "clock-2.log"]
    redis_url = urlsplit(TEST_REDIS_URL)
    queue = reconciliation_queue(services.queue)
    with TcpProxy(redis_url.port or 6379, redis_url.hostname) as proxy:
        clocks = [start_clock(logs[0], **schedules),
                  start_clock(logs[1], REDIS_URL=redis_url._replace(netloc=f"127.0.0.1:{proxy.port}").geturl(),
                              **schedules)]
        try:
            assert wait_for(lambda: all(started(log_path) for log_path in logs), 20)
            [slot] = {started(log_path)["schedules"]["nightly"]["next_at"] for log_path in logs}
            proxy.cut()
            # the first clock enqueues the nightly and the weekly job at the minute; the second waits
            assert wait_for(lambda: queue.count >= 2, 90), [log_path.read_text() for log_path in logs]
            time.sleep(2)
            assert queue.count == 2
            proxy.restore()
            assert wait_for(lambda: queue.count >= 4, 30), [log_path.read_text() for log_path in logs]
        finally:
            statuses = [stop(clock) for clock in clocks]
    assert statuses == [0, 0]
    assert any(line["event"].startswith("Redis unreachable") for line in lines(logs[1]))
    assert queue.count == 4
    for log_path in logs:
        enqueued = [line for line in lines(log_path) if line["event"] == "scheduled reconciliation enqueued"]
        assert sorted(line["schedule"] for line in enqueued) == ["nightly", "weekly"]

    worker_log = tmp_path / "worker.log"
    worker = start_worker(worker_log, "--burst", "--queues", RECONCILIATION_QUEUE_NAME, stripe_url=stripe_api.url)
    try:
        assert worker.wait(timeout=120) == 0, worker_log.read_text()
    finally:
        kill_group(worker)
    with services.pool.connection() as conn:
        runs = conn.cursor(row_factory=dict_row).execute(
            "SELECT trigger, status, account, changed_since FROM reconciliation_runs ORDER BY created_at").fetchall()
    assert sorted(run["trigger"] for run in runs) == ["nightly", "weekly"], worker_log.read_text()
    assert {run["status"] for run in runs} == {"succeeded"}
    text = worker_log.read_text()
    assert text.count("another job has this slot") == 2, text
    assert f'"slot": "{slot}"' in text  # the slot the jobs claimed is the minute the clocks named
    assert queue.count == 0 and queue.failed_job_registry.count == 0
