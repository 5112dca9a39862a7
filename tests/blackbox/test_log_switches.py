"""ACCESS_LOG and LOG_LEVEL, on a real `teachery-sync web`: what its output holds with each."""
import json
import signal
import subprocess
import time

import pytest
import requests

from teachery_sync.embedded import free_port
from tests.blackbox.service import BIN, ROOT, sign
from tests.blackbox.test_hostile import event_body
from tests.worker_processes import kill_group


def _run_web(service, tmp_path, **env) -> list[dict]:
    """Start a web with these settings, send a stored webhook, a refused one and a 404; its JSON lines."""
    port = free_port()
    log = tmp_path / "web.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(BIN), "web", "--port", str(port), "--workers", "1"], cwd=ROOT,
                                env={**service.env, "LOG_FORMAT": "json", **env}, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 30
        while True:
            assert proc.poll() is None and time.time() < deadline, log.read_text()
            try:
                if requests.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        body = json.dumps(event_body(id=f"evt_BBlogswitch{port}")).encode()
        assert requests.post(url + "/webhooks/stripe", data=body, headers={"Stripe-Signature": sign(body)},
                             timeout=10).status_code == 200
        assert requests.post(url + "/webhooks/stripe", data=body, headers={"Stripe-Signature": "t=1,v1=00"},
                             timeout=10).status_code == 400
        assert requests.get(url + "/no-such-page", timeout=10).status_code == 404
    finally:
        kill_group(proc, signal.SIGTERM)  # a graceful stop: every line the requests caused is written
        proc.wait(20)
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


@pytest.mark.parametrize("env, access_lines, received_lines", [
    ({}, 2, 1),  # the default: the refused webhook's and the 404's request lines; the stored event on its group's line
    ({"ACCESS_LOG": "off"}, 0, 1),
    ({"ACCESS_LOG": "off", "LOG_LEVEL": "warning"}, 0, 0),
])
def test_access_log_and_log_level_switches(service, tmp_path, env, access_lines, received_lines):
    lines = _run_web(service, tmp_path, **env)
    assert len([line for line in lines if line.get("logger") == "gunicorn.access"]) == access_lines, lines
    assert sum(len(line["events"]) for line in lines if line.get("event") == "events received") == received_lines, lines


def test_a_bad_switch_is_a_clear_error(service):
    done = service.cli("web", "--port", str(free_port()), env={"ACCESS_LOG": "sometimes"}, timeout=30)
    assert done.returncode != 0 and "ACCESS_LOG must be on or off" in done.stderr, done.stderr
    done = service.cli("web", "--port", str(free_port()), env={"LOG_LEVEL": "loud"}, timeout=30)
    assert done.returncode != 0 and "LOG_LEVEL must be one of" in done.stderr, done.stderr
