"""Import by reconciliation: a fixing run over an account we have never seen creates the records its
events would have.

One realistic history is made in the fake Stripe (customers, one-off Checkout purchases, subscriptions
with renewals and a declined attempt, a partial refund, a pause, a cancellation at period end, a customer
edit). Then:
(a) every event of that history goes through the real pipeline (signed POST → ledger → worker) and each
    customer's profile (GET /admin/api/stripe-customers/{cus}) is taken;
(b) the database is emptied, one fixing reconciliation runs over that account only (POST
    /admin/api/reconciliations → worker), and the profiles are taken again.
The two must be equal. Compared: the whole profile (name, email, deleted_in_stripe; every payment with its
charge, payment intent, invoice, subscription, course, amount, currency, refunded amount, status, created
time and refunds; every subscription's state and course; every enrollment with its access and grant
time), leaving out only our internal customer id and the activity log (origin and wording differ by
design: `stripe` and the event's id against `reconciliation`).
"""
from __future__ import annotations

import difflib
import json

import pytest

from tests.fake_stripe import DAY, T0
from tests.stripe_events import event
from tests.stripe_histories import SCENARIOS, build
from tests.support import BASIL, OLD, V2024, truncate_all

ACCT = "acct_1ImportCreator"
PAUSED = {"behavior": "keep_as_draft", "resumes_at": None}


def play_history(fake, account) -> list[str]:
    """Two customers' years with a creator; returns their customer ids."""
    ada = fake.create_customer(account, "Ada Lovelace", "ada@example.com", cus_id="cus_ImportAda")
    bob = fake.create_customer(account, "Bob Stone", "bob@example.com", cus_id="cus_ImportBob")
    python = fake.buy_course(account, ada["id"], 4900, "course_python")
    fake.buy_course(account, bob["id"], 2900, "course_art")
    fake.refund(account, python["id"], 1000, reason="requested_by_customer")  # partial: access stays
    yoga, _ = fake.subscribe(account, ada["id"], 1500, "course_yoga")
    fake.renew(account, yoga["id"], failures=0)
    fake.renew(account, yoga["id"], failures=1)  # declined once, then paid by a retry of the same intent
    fake.update_subscription(account, yoga["id"], {"pause_collection": PAUSED})
    music, _ = fake.subscribe(account, bob["id"], 2000, "course_music")
    fake.update_subscription(account, music["id"], {"cancel_at_period_end": True})
    fake.cancel_subscription(account, music["id"], at=fake.period_end(music))
    fake.update_customer(account, ada["id"], {"name": "Ada King"})
    return [ada["id"], bob["id"]]


def comparable(profile: dict, *, grant_times: bool = True) -> dict:
    """The profile without our internal id and the activity log, lists in a stable order (and without the
    enrollments' grant times, when not `grant_times`)."""
    state = {k: v for k, v in profile.items() if k not in ("id", "activity")}
    if not grant_times:
        profile = {**profile, "enrollments": [{**e, "granted_at": None} for e in profile["enrollments"]]}
    state["payments"] = sorted((dict(p, refunds=sorted(p["refunds"], key=lambda r: r["stripe_refund_id"]))
                                for p in profile["payments"]), key=lambda p: p["stripe_charge_id"] or "")
    state["subscriptions"] = sorted(profile["subscriptions"], key=lambda s: s["stripe_subscription_id"])
    state["enrollments"] = sorted(profile["enrollments"], key=lambda e: e["course_id"])
    return state


@pytest.mark.parametrize("account", [None, ACCT], ids=["platform", "connected"])
@pytest.mark.parametrize("version", [OLD, V2024, BASIL])
def test_a_fixing_run_over_an_unseen_account_imports_what_the_events_would_have(
        version, account, settings, services, stripe_api, send, admin, run_worker, profile):
    stripe_api.reset(version, now=T0 + DAY)
    customers = play_history(stripe_api, account)

    send(*stripe_api.take_events())
    status, ledger = admin("GET", "/events?limit=1000")
    assert [e for e in ledger["events"] if e["status"] not in ("processed", "ignored")] == []
    from_events = {cus: profile(cus, account) for cus in customers}

    truncate_all(settings.database_url)
    services.redis.flushdb()
    status, started = admin("POST", "/reconciliations", {"account": account} if account else {})
    assert status == 202, started
    run_worker()
    status, report = admin("GET", f"/reconciliations/{started['id']}")
    assert report["status"] == "succeeded", report
    assert report["drift"] and all(item["fixed"] for item in report["drift"]), report["drift"]
    imported = {cus: profile(cus, account) for cus in customers}

    for cus in customers:
        want, got = (json.dumps(comparable(p[cus]), indent=1, sort_keys=True).splitlines()
                     for p in (from_events, imported))
        assert got == want, "\n".join(difflib.unified_diff(want, got, "from events", "imported", lineterm=""))
    ada = from_events[customers[0]]
    assert ada["name"] == "Ada King"
    assert sorted((e["course_id"], e["access"]) for e in ada["enrollments"]) == [
        ("course_python", "active"), ("course_yoga", "active")]
    paid_by_invoice = [p for p in ada["payments"] if p["stripe_invoice_id"]]
    assert len(paid_by_invoice) == 4  # the first invoice, a renewal, a declined attempt and its retry
    assert all(p["stripe_subscription_id"] and p["course_id"] == "course_yoga" for p in paid_by_invoice)
    assert all(a["origin"] == "reconciliation" for p in imported.values() for a in p["activity"])

    again = admin("POST", "/reconciliations", {"account": account} if account else {})[1]
    run_worker()
    assert admin("GET", f"/reconciliations/{again['id']}")[1]["drift"] == []


DELAYED = ("ach_settles",)

# By default each history in one version (2020-03-02 and basil in turn); `pytest -m slow` plays both.
ONE_VERSION_EACH = [pytest.param(name, (OLD, BASIL)[n % 2], id=f"{name}-{(OLD, BASIL)[n % 2]}")
                    for n, name in enumerate(SCENARIOS)]
OTHER_VERSION = [pytest.param(name, (BASIL, OLD)[n % 2], id=f"{name}-{(BASIL, OLD)[n % 2]}",
                              marks=pytest.mark.slow) for n, name in enumerate(SCENARIOS)]


@pytest.mark.parametrize("name, version", ONE_VERSION_EACH + OTHER_VERSION)
def test_each_hard_history_imports_as_its_events_applied_it(name, version, settings, services, stripe_api, send,
                                                            admin, run_worker, profile):
    story = build(name, f"I{list(SCENARIOS).index(name):02d}z", version)
    stripe_api.put(*story.finals)
    send(*[event(type_, obj, created=created, api_version=version) for type_, obj, created in story.events])
    from_events = profile(story.cus)

    truncate_all(settings.database_url)
    services.redis.flushdb()
    status, started = admin("POST", "/reconciliations", {})
    run_worker()
    assert admin("GET", f"/reconciliations/{started['id']}")[1]["status"] == "succeeded"
    imported = profile(story.cus)

    # Stripe's objects do not say when a delayed payment (an ACH debit) succeeded, only when it started (the
    # charge's `created`): the import dates that access from its start, the events from charge.succeeded.
    grant_times = name not in DELAYED
    want, got = (json.dumps(comparable(p, grant_times=grant_times), indent=1, sort_keys=True).splitlines()
                 for p in (from_events, imported))
    assert got == want, "\n".join(difflib.unified_diff(want, got, "from events", "imported", lineterm=""))
