"""The chaos soak: the real service, under faults, loses no Stripe event and applies none
twice.

The service (`web --workers 2` and 2 `worker` processes) runs against its own PostgreSQL and Redis
(tests/chaos/conftest.py). A Stripe-like sender (tests/chaos/sender.py) delivers a generated history
(tests/chaos/history.py: realistic customer histories over the platform and two connected accounts, in
API versions 2020-03-02 and 2025-03-31.basil; about 30% of events sent twice, shuffled, bursts) while the
injectors (tests/chaos/faults.py) SIGKILL workers every few seconds, SIGKILL a gunicorn worker, crash and
shut down Redis, stop PostgreSQL (fast and immediate) and make the fake Stripe answer 500 and 429.

Then, with no manual replay, the service must settle within CHAOS_SETTLE seconds, and: every event is
stored once and `processed` or `ignored` as its type says, every customer's profile equals its history's
final state, no activity entry is written twice, no delivery was lost or answered anything but 2xx or 503.

Size by environment (CI's defaults take 40 s to 2 minutes on two shared cores, depending on whether the
sweep must pick up events stranded by the last outage, at most about 70 s after it):
CHAOS_EVENTS (events generated, default 1000), CHAOS_SECONDS (how long the sender spreads them over,
default 30), CHAOS_SEED, CHAOS_SETTLE (bound on the settle time, default 150 s), CHAOS_KILL_EVERY (seconds
between worker kills, default 2), CHAOS_FAULT_PAUSE and CHAOS_OUTAGE (seconds between faults, and each
outage's length, defaults 1 and 2). See docs/chaos-soak.md for the large run.
"""
from __future__ import annotations

import collections
import os
import threading
import time

import psycopg
import pytest

from tests.chaos.faults import CYCLE, Faults, WorkerKiller
from tests.chaos.history import deliveries, generate
from tests.chaos.sender import Sender
from tests.stripe_histories import view_of
from tests.support import settled_status

pytestmark = [pytest.mark.chaos, pytest.mark.slow]  # about a minute: `make test-all`, or `pytest -m chaos`


def _env(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


def ledger_state(url: str) -> dict[str, tuple]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        rows = conn.execute("SELECT id, type, status, last_error FROM events").fetchall()
    return {r[0]: r[1:] for r in rows}


def unsettled_count(url: str, expected_ids: set[str]) -> int | None:
    """How many of the history's events are not yet processed/ignored (None: the database does not answer)."""
    try:
        ledger = ledger_state(url)
    except psycopg.Error:
        return None
    return sum(1 for i in expected_ids if i not in ledger or ledger[i][1] not in ("processed", "ignored"))


def duplicated_activity(url: str) -> list[tuple]:
    """Activity entries written twice: one event's entry about one record, with one kind and message, more than
    once (one event may write two entries of a kind about one record: a payment's course and its invoice)."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT stripe_event_id, customer_id, kind, record_type, record_id, message, count(*) FROM activity"
            " GROUP BY 1, 2, 3, 4, 5, 6 HAVING count(*) > 1 ORDER BY 1 LIMIT 20").fetchall()


def test_chaos_soak(world, capsys):
    svc, pg, rds, root = world
    n_events, seconds = int(_env("CHAOS_EVENTS", 1000)), _env("CHAOS_SECONDS", 30)
    seed, settle_bound = int(_env("CHAOS_SEED", 12)), _env("CHAOS_SETTLE", 150)

    def say(line: str) -> None:
        with capsys.disabled():
            print(line, flush=True)

    copies = generate(n_events, seed)
    events = [e for c in copies for e in c.events]
    for c in copies:
        svc.fake.put(*c.story.finals, account=c.account)
    plan = deliveries(copies, seed)
    expected_ids = {e["id"] for e in events}
    say(f"\nchaos soak: {len(events)} events of {len(copies)} customers, {len(plan)} deliveries over {seconds:.0f}s;"
        f" files in {root}")

    sender, killer, faults, sent_in = _send_under_faults(svc, pg, rds, plan, seconds, seed, say)
    faults_over = time.monotonic()
    left = _settle(pg.url, expected_ids, settle_bound)  # by itself: no replay, only time
    settle = time.monotonic() - faults_over

    stuck, missing, extra = _ledger_against(pg.url, expected_ids)
    mismatches = _profile_mismatches(svc, copies)
    twice = duplicated_activity(pg.url)
    leaks = _logs_holding_a_secret(svc)
    stripe_answers = collections.Counter(r["status"] for r in svc.fake.calls)

    figures = {
        "events": len(events), "customers": len(copies), "deliveries": len(plan),
        "http requests": sender.attempts, "retries": sender.retries,
        "answers": dict(sorted(sender.statuses.items())), "5xx answered": sender.answered_5xx,
        "connection errors": sender.connection_errors,
        "worker kills": killer.kills, "workers that refused to start (a dependency down)": killer.refused_to_start,
        "worker crashes": len(killer.crashes),
        "Stripe API calls by the workers": dict(sorted(stripe_answers.items())),
        "faults": dict(faults.done), "fault errors": faults.errors,
        "restarts": {"redis": faults.done["redis_crash"] + faults.done["redis_shutdown"],
                     "postgres": faults.done["postgres_fast"] + faults.done["postgres_immediate"]},
        "sending took": f"{sent_in:.1f}s", "time to settle": f"{settle:.1f}s",
        "lost deliveries": len(sender.lost), "unexpected answers": len(sender.unexpected),
        "events missing": len(missing), "events not processed/ignored": len(stuck),
        "activity entries twice": len(twice), "mismatches": len(mismatches),
        "logs holding a secret": len(leaks),
    }
    say("chaos soak figures:\n" + "\n".join(f"  {k}: {v}" for k, v in figures.items()))

    assert not sender.lost, f"deliveries never accepted: {sender.lost[:10]}"
    assert not sender.unexpected, f"answers other than 2xx/503: {sender.unexpected[:10]}"
    assert not faults.errors, faults.errors
    assert not killer.crashes, f"worker processes died without being killed: {killer.crashes}"
    assert left == 0, f"not settled after {settle_bound:.0f}s: {left} events left; {stuck[:10]}"
    assert not missing and not extra, (missing[:10], extra[:10])
    assert not stuck, stuck[:10]
    assert not twice, twice
    assert not mismatches, mismatches[:3]
    assert not leaks, leaks


def _send_under_faults(svc, pg, rds, plan, seconds: float, seed: int, say) -> tuple[Sender, WorkerKiller, Faults, float]:
    """Send the plan over `seconds` while workers are killed and faults injected (at least one whole cycle of
    them, however fast the sending went); then stop the faults and leave 2 workers running. Returns the
    sender, the killer, the faults and how long the sending took."""
    killer = WorkerKiller(svc, 2, _env("CHAOS_KILL_EVERY", 2), seed)
    faults = Faults(svc, pg, rds, pause=_env("CHAOS_FAULT_PAUSE", 1), outage=_env("CHAOS_OUTAGE", 2), seed=seed,
                    log=say)
    sender = Sender(svc.url)
    started = time.monotonic()
    killer.start()
    faults.start()
    sending = threading.Thread(target=sender.send_all, args=(plan, seconds), daemon=True)
    sending.start()
    sending.join()
    sent_in = time.monotonic() - started
    while sum(faults.done.values()) < len(CYCLE) and time.monotonic() - started < seconds + 120:
        time.sleep(0.2)
    faults.stop.set()
    killer.stop.set()
    faults.join(timeout=120)
    killer.join(timeout=60)
    killer.keep_running()
    return sender, killer, faults, sent_in


def _settle(url: str, expected_ids: set[str], bound: float) -> int | None:
    """Wait up to `bound` seconds for every expected event to be processed or ignored; how many are not."""
    started, left = time.monotonic(), None
    while time.monotonic() - started < bound:
        left = unsettled_count(url, expected_ids)
        if left == 0:
            break
        time.sleep(0.5)
    return left


def _ledger_against(url: str, expected_ids: set[str]) -> tuple[list, list, list]:
    """The ledger's events not processed/ignored as their type says, the expected ones missing, the others."""
    ledger = ledger_state(url)
    stuck = [(i, t, s, err) for i, (t, s, err) in ledger.items() if i in expected_ids and s != settled_status(t)]
    return stuck, sorted(expected_ids - set(ledger)), sorted(set(ledger) - expected_ids)


def _profile_mismatches(svc, copies) -> list[tuple]:
    """The customers whose profile, read through the admin API, is not their history's final state."""
    mismatches = []
    for c in copies:
        status, profile = svc.admin("GET", f"/stripe-customers/{c.story.cus}"
                                    + (f"?account={c.account}" if c.account else ""))
        if status != 200:
            mismatches.append((c.tag, c.account, c.version, status, profile))
        elif view_of(profile) != c.story.expected.view() or profile["account"] != c.account:
            mismatches.append((c.tag, c.account, c.version, view_of(profile), c.story.expected.view()))
    return mismatches


def _logs_holding_a_secret(svc) -> dict[str, list[str]]:
    """No secret in any process's output, whatever the faults made them say: the logs that hold one."""
    secrets = (svc.env["STRIPE_WEBHOOK_SECRET"], svc.env["ADMIN_TOKEN"], svc.env["STRIPE_API_KEY"])
    leaks = {path.name: [s for s in secrets if s in path.read_text(errors="replace")]
             for path in svc.logdir.glob("*.log")}
    return {name: found for name, found in leaks.items() if found}
