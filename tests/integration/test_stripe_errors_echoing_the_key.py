"""A Stripe answer that echoes our API key (a proxy's, a mock's, or Stripe's own for a key it cannot parse): the key
is masked before the message becomes an admin answer, an admin action's stored error or an event's last_error."""
from __future__ import annotations

import dataclasses

import psycopg
import pytest
from rq.job import Job
from rq.registry import FailedJobRegistry

from tests.fake_stripe import StripeError
from tests.stripe_events import T0, charge, customer, event
from workers.queueing import RECONCILIATION_QUEUE_NAME

KEY = "sk_test_EchoedKey4f2a9c81"


@pytest.fixture
def settings(settings):
    return dataclasses.replace(settings, stripe_api_key=KEY)


@pytest.fixture
def ada(stripe_api, send, profile):
    cus = customer("cus_Echo", email="ada@example.com", name="Ada Lovelace")
    ch = charge("ch_Echo", customer="cus_Echo", amount=4900, created=T0, metadata={"course_id": "course_e"})
    stripe_api.put(cus, ch)
    send(event("customer.created", cus, created=T0), event("charge.succeeded", ch, created=T0))
    return profile("cus_Echo")


def rows_holding_the_key(database_url: str) -> dict:
    with psycopg.connect(database_url) as conn:
        tables = [t for (t,) in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")]
        found = {t: conn.execute(f"SELECT count(*) FROM {t} r WHERE r::text LIKE %s",  # noqa: S608 - our tables
                                 (f"%{KEY}%",)).fetchone()[0] for t in tables}
    return {t: n for t, n in found.items() if n}


@pytest.mark.parametrize(("status", "type_", "answer"), [(401, "invalid_request_error", 503),
                                                         (400, "invalid_request_error", 400),
                                                         (403, "invalid_request_error", 403),
                                                         (500, "api_error", 503)])
def test_an_admin_action_stripe_refuses_with_the_key_in_its_message(admin, stripe_api, ada, settings,
                                                                   status, type_, answer):
    stripe_api.fail_next.append(("POST", "/v1/refunds", StripeError(status, type_, f"Invalid API Key provided: {KEY}")))
    code, body = admin("POST", "/payments/ch_Echo/refund", {"amount": 100})
    assert code == answer and "Invalid API Key provided: ***" in body["error"], body
    assert KEY not in str(body)
    assert rows_holding_the_key(settings.database_url) == {}


def test_an_event_whose_fetch_stripe_refuses_with_the_key_keeps_it_out_of_last_error(admin, stripe_api, send,
                                                                                      settings):
    stripe_api.fail_next.extend(("GET", "/v1/customers/cus_EchoNew", StripeError(
        400, "invalid_request_error", f"Invalid API Key provided: {KEY}")) for _ in range(3))
    purchase = event("charge.succeeded", charge("ch_EchoNew", customer="cus_EchoNew", amount=100, created=T0),
                     created=T0)
    send(purchase)
    code, body = admin("GET", f"/events/{purchase['id']}")
    assert code == 200 and "Invalid API Key provided: ***" in body["last_error"], body
    assert KEY not in str(body)
    code, listed = admin("GET", "/events?limit=10")
    assert KEY not in str(listed)
    assert rows_holding_the_key(settings.database_url) == {}


def test_a_failed_reconciliation_job_keeps_the_key_out_of_the_traceback_rq_stores(admin, stripe_api, services,
                                                                                run_worker, settings):
    """The run's error was masked, but stripe-python's error was chained under ours: RQ kept the whole traceback,
    key included, in Redis (shown by its dashboard and `teachery-sync jobs failed`)."""
    stripe_api.fail_next.extend(("GET", "/v1/", StripeError(401, "invalid_request_error",
                                                            f"Invalid API Key provided: {KEY}")) for _ in range(20))
    status, body = admin("POST", "/reconciliations", {"dry_run": True})
    assert status == 202, body
    run_worker()
    status, run = admin("GET", f"/reconciliations/{body['id']}")
    assert run["status"] == "failed" and "Invalid API Key provided: ***" in run["error"], run
    [job_id] = FailedJobRegistry(RECONCILIATION_QUEUE_NAME, connection=services.redis).get_job_ids()
    traceback = Job.fetch(job_id, connection=services.redis).latest_result().exc_string
    assert "Stripe rejected the API key: Invalid API Key provided: ***" in traceback
    assert KEY not in traceback
    assert rows_holding_the_key(settings.database_url) == {}
