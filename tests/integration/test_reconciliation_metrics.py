"""GET /metrics: what the reconciliation runs found per account, and when one of every account last
succeeded (a failed run leaves it where it was), read from PostgreSQL at scrape time."""
from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from domain import reconciliations
from domain.reconciliations import Scope
from tests.stripe_events import T0, charge, customer, event
from workers import reconciliation, scheduled

ACCT = "acct_1MetricsCreator"
SUNDAY_AT_4 = datetime(2026, 12, 6, 4, 0, 1, tzinfo=UTC)


def _metrics(client) -> dict[str, float]:
    text = client.get("/metrics").get_data(as_text=True)
    return {name: float(value) for name, value in re.findall(r"^(teachery_reconciliation_(?:drift_objects|last_success)\S*) (\S+)$", text, re.M)}


def _run(services, scope: Scope, dry_run: bool = False) -> str:
    with services.pool.connection() as conn:
        run_id = reconciliations.create(conn, scope, dry_run)
    return reconciliation.run(services, run_id)


def _finished_at(services, status: str) -> float:
    with services.pool.connection() as conn:
        return conn.execute("SELECT max(finished_at) FROM reconciliation_runs WHERE status = %s",
                            (status,)).fetchone()[0].timestamp()


def test_nothing_reconciled_yet(client):
    assert _metrics(client) == {}


def test_drifted_objects_per_account_from_the_latest_run_that_covered_it(client, services, stripe_api, send):
    people = [customer(f"cus_Metrics{n}", email=f"m{n}@example.com", name=f"Person {n}", created=T0)
              for n in range(3)]
    send(*[event("customer.created", person, created=T0, account=ACCT) for person in people],
         event("customer.created", customer("cus_MetricsOwn", email="own@example.com", name="Own", created=T0),
               created=T0))
    # In Stripe: two of the account's customers renamed (one with a new email too: still one object),
    # the platform's customer renamed, and a charge of the account we never saw.
    stripe_api.put(customer("cus_Metrics0", email="new0@example.com", name="Renamed 0", created=T0),
                   customer("cus_Metrics1", email="m1@example.com", name="Renamed 1", created=T0),
                   people[2], charge("ch_MetricsNever", customer="cus_Metrics2", amount=900, created=T0 + 60),
                   account=ACCT)
    stripe_api.put(customer("cus_MetricsOwn", email="own@example.com", name="Own Renamed", created=T0))

    assert _run(services, Scope(), dry_run=True) == "succeeded"
    assert _metrics(client) == {
        'teachery_reconciliation_drift_objects{account="acct_1MetricsCreator"}': 3.0,
        'teachery_reconciliation_drift_objects{account="platform"}': 1.0}  # a dry run is no fixing success

    assert scheduled.run_scheduled(services, "weekly", "0 4 * * 0", SUNDAY_AT_4) == "succeeded"
    weekly = _finished_at(services, "succeeded")
    metrics = _metrics(client)
    assert metrics == {
        'teachery_reconciliation_drift_objects{account="acct_1MetricsCreator"}': 3.0,
        'teachery_reconciliation_drift_objects{account="platform"}': 1.0,
        "teachery_reconciliation_last_success_timestamp": weekly,
        'teachery_reconciliation_last_success_by_trigger_timestamp{trigger="weekly"}': weekly}

    # The account alone, again: all fixed now, so the account shows 0; the platform keeps the full run's 1.
    assert _run(services, Scope(account=ACCT)) == "succeeded"
    metrics = _metrics(client)
    assert metrics['teachery_reconciliation_drift_objects{account="acct_1MetricsCreator"}'] == 0.0
    assert metrics['teachery_reconciliation_drift_objects{account="platform"}'] == 1.0
    assert metrics["teachery_reconciliation_last_success_timestamp"] == weekly  # one account is not every one


def test_a_failed_run_leaves_the_last_success_where_it_was(client, services, stripe_api):
    assert _run(services, Scope()) == "succeeded"
    success = _finished_at(services, "succeeded")
    assert _metrics(client)["teachery_reconciliation_last_success_timestamp"] == success
    stripe_api.down = True
    with pytest.raises(Exception, match="Stripe"):
        _run(services, Scope())
    assert _finished_at(services, "failed") > success
    metrics = _metrics(client)
    assert metrics["teachery_reconciliation_last_success_timestamp"] == success
    assert metrics['teachery_reconciliation_last_success_by_trigger_timestamp{trigger="admin"}'] == success
