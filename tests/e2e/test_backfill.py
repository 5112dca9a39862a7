"""`teachery-sync backfill`, end to end: Stripe's Events API (faked) → ledger → RQ → worker → profiles.

The command runs in-process (click's CliRunner) against the fake Stripe (tests/fake_stripe); it
builds its own services from the environment, pointed at the test database, Redis and fake API.
"""
from __future__ import annotations

import time
from urllib.parse import parse_qs

import pytest
from click.testing import CliRunner

from teachery_sync.cli import main
from tests.fake_stripe import shared_server
from tests.stripe_events import DAY, charge, customer, event
from tests.support import TEST_DATABASE_URL, TEST_REDIS_URL, iso

NOW = int(time.time())
ACCT_A, ACCT_B, ACCT_UNKNOWN = "acct_1BackfillA", "acct_1BackfillB", "acct_1BackfillUnknown"
ENV = {"DATABASE_URL": TEST_DATABASE_URL, "REDIS_URL": TEST_REDIS_URL, "STRIPE_API_KEY": "sk_test_123"}


def _stripe() -> dict:
    """The fake Stripe the test's `stripe_api` fixture set up: this process's shared server."""
    return {"STRIPE_API_BASE": shared_server().url}


def backfill(*args, env=None):
    return CliRunner().invoke(main, ["backfill", *args], env={**ENV, **_stripe(), **(env or {})})


def customer_event(cus_id, name, created, account=None, type_="customer.updated"):
    obj = customer(cus_id, email=f"{cus_id.lower()}@example.com", name=name, created=created)
    return event(type_, obj, created=created, account=account)


def _ledger(services):
    with services.pool.connection() as conn:
        rows = conn.execute("SELECT id, account, source, status FROM events ORDER BY created, id").fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


@pytest.fixture
def known_accounts(send):
    """The platform and two connected accounts we know, from webhooks the receiver took."""
    send(customer_event("cus_KnownP", "Known Platform", NOW - 5 * DAY, type_="customer.created"),
         customer_event("cus_KnownA", "Known A", NOW - 5 * DAY, ACCT_A, "customer.created"),
         customer_event("cus_KnownB", "Known B", NOW - 5 * DAY, ACCT_B, "customer.created"))


def test_backfill_applies_missed_events_of_the_platform_and_every_known_account(
        services, stripe_api, known_accounts, run_worker, profile):
    missed = {
        None: customer_event("cus_MissedP", "Missed Platform", NOW - DAY, type_="customer.created"),
        ACCT_A: customer_event("cus_KnownA", "Renamed A", NOW - DAY, ACCT_A),
        ACCT_B: event("charge.succeeded", charge("ch_MissedB", customer="cus_KnownB", amount=4900,
                                                  created=NOW - DAY, metadata={"course_id": "course_b"}),
                      created=NOW - DAY, account=ACCT_B),
        ACCT_UNKNOWN: customer_event("cus_Stranger", "Not ours", NOW - DAY, ACCT_UNKNOWN, "customer.created"),
    }
    for account, missed_event in missed.items():
        stripe_api.put_event(missed_event, account=account)

    result = backfill("--since", iso(NOW - 3 * DAY))

    assert result.exit_code == 0, result.output
    assert "backfill: 3 fetched, 3 new, 0 already known" in result.stdout
    queried = {c["account"] for c in stripe_api.calls_to("/v1/events")}
    assert queried == {None, ACCT_A, ACCT_B}  # never an account we do not know
    ledger = _ledger(services)
    assert ledger[missed[None]["id"]] == ("", "backfill", "received")
    assert ledger[missed[ACCT_A]["id"]] == (ACCT_A, "backfill", "received")  # the account is set on the API's copy
    assert missed[ACCT_UNKNOWN]["id"] not in ledger

    run_worker()

    assert profile("cus_MissedP")["name"] == "Missed Platform"
    assert profile("cus_KnownA", ACCT_A)["name"] == "Renamed A"
    paid = profile("cus_KnownB", ACCT_B)
    assert [(p["stripe_charge_id"], p["amount"]) for p in paid["payments"]] == [("ch_MissedB", 4900)]
    assert [e["course_id"] for e in paid["enrollments"]] == ["course_b"]
    assert profile("cus_KnownA") is None  # nothing leaked into the platform's records
    assert {s for (_, _, s) in _ledger(services).values()} == {"processed"}


def test_backfill_with_account_reads_only_that_account(services, stripe_api, known_accounts):
    for account in (None, ACCT_A, ACCT_B):
        stripe_api.put_event(customer_event("cus_Only", "Only", NOW - DAY, account), account=account)

    result = backfill("--since", iso(NOW - 3 * DAY), "--account", ACCT_B)

    assert result.exit_code == 0, result.output
    assert {c["account"] for c in stripe_api.calls_to("/v1/events")} == {ACCT_B}
    assert [a for (a, source, _) in _ledger(services).values() if source == "backfill"] == [ACCT_B]


def test_events_already_in_the_ledger_are_counted_and_not_applied_again(
        services, stripe_api, send, run_worker, profile):
    received = customer_event("cus_Twice", "Twice", NOW - DAY, type_="customer.created")
    send(received)
    before = profile("cus_Twice")
    missed = customer_event("cus_Twice", "Twice Renamed", NOW - DAY + 60)
    stripe_api.put_event(received, missed)

    result = backfill("--since", iso(NOW - 3 * DAY))
    run_worker()

    assert result.exit_code == 0, result.output
    assert "backfill: 2 fetched, 1 new, 1 already known" in result.stdout
    with services.pool.connection() as conn:
        attempts = conn.execute("SELECT source, attempts FROM events WHERE id = %(id)s",
                                {"id": received["id"]}).fetchone()
    assert attempts == ("webhook", 1)  # stored once, by the receiver, applied once
    after = profile("cus_Twice")
    assert after["name"] == "Twice Renamed"
    assert [a for a in after["activity"] if a["stripe_event_id"] == received["id"]] == \
        [a for a in before["activity"] if a["stripe_event_id"] == received["id"]]

    again = backfill("--since", iso(NOW - 3 * DAY))
    assert "backfill: 2 fetched, 0 new, 2 already known" in again.stdout


def test_pages_are_followed_and_events_are_stored_oldest_first(services, stripe_api, run_worker, profile):
    stripe_api.page_size = 2
    names = ["First", "Second", "Third", "Fourth", "Fifth"]
    events = [customer_event("cus_Paged", name, NOW - DAY + i * 60, type_="customer.updated")
              for i, name in enumerate(names)]
    stripe_api.put_event(*events)

    result = backfill("--since", iso(NOW - 3 * DAY))

    assert result.exit_code == 0, result.output
    pages = stripe_api.calls_to("/v1/events")
    assert len(pages) == 3
    assert [parse_qs(p["query"]).get("starting_after") for p in pages] == \
        [None, [events[3]["id"]], [events[1]["id"]]]  # Stripe lists newest first
    queued = [job_id.removeprefix("event-") for job_id in services.queue.job_ids]
    assert queued == [e["id"] for e in events]  # oldest first
    run_worker()
    assert profile("cus_Paged")["name"] == "Fifth"


def test_since_older_than_30_days_is_moved_to_30_days_ago_with_a_warning(services, stripe_api):
    result = backfill("--since", iso(NOW - 45 * DAY))

    assert result.exit_code == 0, result.output
    assert "warning: Stripe keeps events for 30 days" in result.stderr
    [call] = stripe_api.calls_to("/v1/events")
    gte = int(parse_qs(call["query"])["created[gte]"][0])
    assert abs(gte - (time.time() - 30 * DAY)) < 120


def test_since_is_sent_as_created_gte(services, stripe_api):
    stripe_api.put_event(customer_event("cus_Old", "Too old", NOW - 5 * DAY),
                           customer_event("cus_New", "Recent", NOW - DAY))

    result = backfill("--since", iso(NOW - 2 * DAY))

    assert result.exit_code == 0, result.output
    assert "backfill: 1 fetched, 1 new" in result.stdout
    assert parse_qs(stripe_api.calls_to("/v1/events")[0]["query"])["created[gte]"] == [str(NOW - 2 * DAY)]


@pytest.mark.parametrize("args, env, reason", [
    (["--since", "yesterday"], {}, "bad --since"),
    (["--since", iso(NOW + DAY)], {}, "in the future"),
    (["--since", iso(NOW - DAY), "--account", "bogus"], {}, "--account"),
    (["--since", iso(NOW - DAY)], {"STRIPE_API_KEY": ""}, "STRIPE_API_KEY is not set"),
])
def test_refusals_are_one_line_and_non_zero(services, stripe_api, args, env, reason):
    result = backfill(*args, env=env)

    assert result.exit_code != 0
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert reason in line
    assert not stripe_api.calls_to("/v1/events")


def test_stripe_down_exits_non_zero_with_the_reason(services, stripe_api):
    stripe_api.down = True

    result = backfill("--since", iso(NOW - DAY))

    assert result.exit_code != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [errors[0]] and "cannot read events from Stripe" in errors[0], result.output
    assert _ledger(services) == {}
