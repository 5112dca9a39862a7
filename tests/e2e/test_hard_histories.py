"""Stripe's harder histories (tests/stripe_histories.py), each delivered in many shuffled orders with
duplicates, in API versions 2020-03-02, 2024-06-20 and 2025-03-31.basil, on the platform and on a
connected account: every copy must end at Stripe's final state (docs/rules.md, rule 8).

Copies of one scenario carry their own ids, so one database holds them all and one worker drains them
together, the way a few hundred customers' events really arrive. Deliveries go in rounds: each copy
sends its next small batch (in its own order), then the worker runs.

The default run plays each scenario in 22 orders (in order, reversed, 20 seeded shuffles with about two
thirds of the events sent two or three times), spread over the three versions and both kinds of account;
`pytest -m slow` plays 20 shuffles for every scenario × version × account.
"""
from __future__ import annotations

import json

import pytest
from rq import Queue

from tests.stripe_events import BASIL, OLD, V2024, event
from tests.stripe_histories import SCENARIOS, build, delivery_plan, view_of
from tests.support import settled_status
from workers.worker import EventWorker

VERSIONS = (OLD, V2024, BASIL)
ACCOUNT = "acct_1HardHistories"
COMBOS = [(version, account) for version in VERSIONS for account in (None, ACCOUNT)]
SEEDS = list(range(20))


def _copy(name: str, n: int, version: str, account: str | None, order, stripe_api) -> dict:
    tag = f"H{list(SCENARIOS).index(name):02d}{VERSIONS.index(version)}{'c' if account else 'p'}{n:02d}z"
    story = build(name, tag, version)
    envelopes = [event(type_, obj, created=created, account=account, api_version=version)
                 for type_, obj, created in story.events]
    stripe_api.put(*story.finals, account=account)
    return {"tag": tag, "story": story, "events": envelopes, "plan": delivery_plan(envelopes, order),
            "account": account, "version": version, "order": order}


class _UnwatchedWorker(EventWorker):
    """The worker without its pub/sub listener for remote commands (stop, kill), which nobody sends here:
    stopping that thread costs up to 0.2 s per burst, and these tests run a burst per delivery round."""

    def subscribe(self):
        pass

    def unsubscribe(self):
        pass


@pytest.fixture
def run_worker(services):
    """Drain the queue in this process, as `teachery-sync worker --burst` does."""

    def _run():
        worker = _UnwatchedWorker([Queue("teachery-events", connection=services.redis)], connection=services.redis)
        worker.services = services
        worker.work(burst=True, with_scheduler=False, logging_level="WARNING")

    return _run


def _play(copies: list[dict], deliver, run_worker) -> None:
    for round_ in range(max(len(c["plan"]) for c in copies)):
        for c in copies:
            for evt in c["plan"][round_] if round_ < len(c["plan"]) else []:
                response = deliver(evt)
                assert response.status_code == 200, response.get_data()
        run_worker()
    run_worker()


def _comparable(found: dict, tag: str) -> str:
    """The profile without what depends on when we processed (our ids and clock, the log), ids untagged."""
    state = {k: v for k, v in found.items() if k not in ("id", "activity")}
    state["enrollments"] = [{k: v for k, v in e.items() if k != "granted_at"} for e in found["enrollments"]]
    state["payments"] = sorted((dict(p, refunds=sorted(p["refunds"], key=lambda r: r["stripe_refund_id"]))
                                for p in found["payments"]), key=lambda p: p["stripe_charge_id"])
    state["subscriptions"] = sorted(found["subscriptions"], key=lambda s: s["stripe_subscription_id"])
    return json.dumps(state, sort_keys=True).replace(tag, "<tag>").replace(tag.lower(), "<tag>")


def _check(copies: list[dict], admin, profile) -> None:
    status, listed = admin("GET", "/events?limit=1000")
    ledger = {e["id"]: e for e in listed["events"]}
    reference = {}
    for c in copies:
        where = f"{c['story'].cus} ({c['version']}, {c['account'] or 'platform'}, order {c['order']})"
        stuck = [(e["type"], ledger[e["id"]]["status"], ledger[e["id"]]["last_error"]) for e in c["events"]
                 if ledger[e["id"]]["status"] != settled_status(e["type"])]
        assert not stuck, (where, stuck)
        found = profile(c["story"].cus, c["account"])
        assert found is not None, where
        assert view_of(found) == c["story"].expected.view(), where
        assert found["account"] == c["account"]
        ids = {e["id"] for e in c["events"]}
        assert all(a["origin"] == "stripe" and a["stripe_event_id"] in ids for a in found["activity"]), where
        same = reference.setdefault((c["version"], c["account"]), _comparable(found, c["tag"]))
        assert _comparable(found, c["tag"]) == same, where  # every order ends in the same profile


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_history_ends_in_stripes_final_state_in_every_order(name, deliver, run_worker, admin, profile, stripe_api):
    orders = ["in-order", "reversed"] + SEEDS
    copies = [_copy(name, n, *COMBOS[n % len(COMBOS)], order, stripe_api) for n, order in enumerate(orders)]
    _play(copies, deliver, run_worker)
    _check(copies, admin, profile)


@pytest.mark.slow
@pytest.mark.parametrize("account", [None, ACCOUNT], ids=["platform", "connected"])
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_history_in_20_orders_per_version_and_account(name, version, account, deliver, run_worker, admin, profile,
                                                       stripe_api):
    copies = [_copy(name, n, version, account, seed + 100, stripe_api) for n, seed in enumerate(SEEDS)]
    _play(copies, deliver, run_worker)
    _check(copies, admin, profile)
