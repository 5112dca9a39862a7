"""The README's five-minute tour, run as written: its shell blocks (marked `<!-- tour: NAME -->`)
against `teachery-sync web` in a subprocess, the test database and Redis, and `worker --burst`.

The blocks run exactly as written, against a web server on a free port (never the default 8000):
they find it, like everything else, in `.dev/env`, which the test writes as `teachery-sync dev` would.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest

from teachery_sync import dev_env
from teachery_sync.embedded import free_port
from tests.support import ADMIN_TOKEN, NO_STRIPE, ROOT, WEBHOOK_SECRET, unsettled

TOUR_BLOCK = re.compile(r"<!-- tour: (\w+) -->\s*```bash\n(.*?)```", re.S)
DEFAULT_BASE = "127.0.0.1:8000"
SETTINGS = ("DATABASE_URL", "REDIS_URL", "STRIPE_WEBHOOK_SECRET", "ADMIN_TOKEN", "STRIPE_API_KEY", "STRIPE_API_BASE")


def tour_blocks() -> dict[str, str]:
    return {name: body for name, body in TOUR_BLOCK.findall((ROOT / "README.md").read_text())}


def wait_until_ready(base: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{base}/readyz did not answer 200 within {timeout}s")


@pytest.fixture
def stack_env(services):
    """The settings `teachery-sync dev` would give its children, here pointing at the test servers."""
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    return clean | {"DATABASE_URL": services.settings.database_url, "REDIS_URL": services.settings.redis_url,
                    "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, "ADMIN_TOKEN": ADMIN_TOKEN,
                    "STRIPE_API_BASE": NO_STRIPE, "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def web(stack_env):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "teachery_sync.cli", "web", "--port", str(port),
                                "--workers", "1"], env=stack_env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base, process)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture
def newcomer_shell(tmp_path, stack_env, web):
    """Run README blocks in bash from a folder laid out like the project after `make dev`."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    (tmp_path / ".venv").symlink_to(sys.prefix)
    (tmp_path / ".dev").mkdir()
    dev_env.write_env(tmp_path / ".dev", {k: stack_env[k] for k in SETTINGS[:4]}
                      | {dev_env.BASE_URL_KEY: web, dev_env.WEBHOOK_URL_KEY: f"{web}/webhooks/stripe"},
                      embedded=set())
    shell_env = {k: v for k, v in os.environ.items() if k not in SETTINGS} | {"COLUMNS": "200"}  # a terminal
    setup = tour_blocks()["setup"]

    def _run(block: str) -> str:
        script = "set -euo pipefail\n" + setup + block
        done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=shell_env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, f"README block failed:\n{block}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    return _run


def json_documents(text: str) -> list:
    """The JSON documents printed one after another."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        document, at = decoder.raw_decode(text, at)
        found.append(document)
    return found


def test_the_readme_has_the_tour_in_order():
    assert list(tour_blocks()) == ["setup", "trigger", "lookup", "ledger"]
    assert not [name for name, body in tour_blocks().items() if DEFAULT_BASE in body or "localhost:" in body], \
        "the tour takes the service's URL from .dev/env, so `teachery-sync dev --port P` needs no edits"


def test_readme_tour(newcomer_shell, stack_env):
    blocks = tour_blocks()
    sent = newcomer_shell(blocks["trigger"])
    assert sent.count("  200  ") == 4 + 2 + 6 + 1  # purchase, partial refund, subscription (same customer), pause
    worker = subprocess.run([sys.executable, "-m", "teachery_sync.cli", "worker", "--burst"], env=stack_env,
                            capture_output=True, text=True, timeout=120)
    assert worker.returncode == 0, worker.stderr

    profile, search = json_documents(newcomer_shell(blocks["lookup"]))
    assert search["customers"] == [{"id": profile["id"], "account": None, "stripe_customer_id": "cus_jenny",
                                    "name": "Jenny Rosen", "email": "jenny@example.com"}]
    assert (profile["stripe_customer_id"], profile["account"], profile["deleted_in_stripe"]) == \
        ("cus_jenny", None, False)
    assert {(e["course_id"], e["access"]) for e in profile["enrollments"]} == \
        {("course_demo", "active"), ("course_yoga", "active")}  # rules 1 and 4: access stays

    one_off, = [p for p in profile["payments"] if p["stripe_subscription_id"] is None]
    assert (one_off["course_id"], one_off["amount"], one_off["currency"], one_off["amount_refunded"],
            one_off["status"]) == ("course_demo", 4900, "usd", 1000, "partially_refunded")
    assert [(r["amount"], r["status"], r["origin"]) for r in one_off["refunds"]] == [(1000, "succeeded", "stripe")]
    assert one_off["stripe_payment_intent_id"].startswith("pi_")

    subscription, = profile["subscriptions"]
    monthly, = [p for p in profile["payments"] if p["stripe_subscription_id"] == subscription["stripe_subscription_id"]]
    assert (monthly["course_id"], monthly["status"], monthly["amount_refunded"]) == ("course_yoga", "succeeded", 0)
    assert monthly["stripe_invoice_id"].startswith("in_")
    assert (subscription["course_id"], subscription["status"], subscription["pause_collection"],
            subscription["cancel_at_period_end"]) == ("course_yoga", "active", {"behavior": "void", "resumes_at": None},
                                                      False)
    assert profile["activity"] and all(a["origin"] == "stripe" and a["stripe_event_id"].startswith("evt_")
                                       for a in profile["activity"])

    ledger = newcomer_shell(blocks["ledger"])
    assert "checkout.session.completed" in ledger and "charge.refunded" in ledger
    [recent] = json_documents(ledger[ledger.index('{\n    "events"'):])
    assert len(recent["events"]) == 5
    assert unsettled(recent["events"]) == []
