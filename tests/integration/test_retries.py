"""Waiting events are retried on a schedule kept in the ledger, and give up into RQ's failed registry."""
from domain import ledger
from workers.processing import apply_event
from workers.queueing import RETRY_INTERVALS

SUB_EVENT = {
    "id": "evt_retry_1", "object": "event", "type": "customer.subscription.updated", "created": 1700000000,
    "data": {"object": {"id": "sub_R1", "object": "subscription", "customer": "cus_unknown_R1", "status": "active"}},
}


def _status(services):
    with services.pool.connection() as conn:
        return ledger.get_event(conn, "evt_retry_1")


def test_a_wait_schedules_the_next_attempt_without_failing_the_job(services, deliver, run_worker):
    deliver(SUB_EVENT)
    run_worker()  # the customer cannot be fetched (nothing listens on the fake API's port)
    event = _status(services)
    assert (event.status, event.attempts, event.waiting_on) == ("waiting", 1, "cus_unknown_R1")
    assert "cus_unknown_R1" in event.last_error
    assert event.next_attempt_at is not None  # the sweep enqueues attempt 2 when it is due
    assert services.queue.failed_job_registry.count == 0


def test_after_the_last_attempt_the_event_fails_for_good(services, deliver, run_worker):
    deliver(SUB_EVENT)
    run_worker()
    for _ in range(len(RETRY_INTERVALS)):
        try:
            apply_event(services, "evt_retry_1", due=True)
        except Exception as exc:
            final = exc
    event = _status(services)
    assert event.status == "failed" and event.last_error.startswith("gave up after")
    assert "failed for good" in str(final)


def test_a_job_before_the_retry_time_changes_nothing(services, deliver, run_worker):
    deliver(SUB_EVENT)
    run_worker()
    assert apply_event(services, "evt_retry_1") == "waiting"
    assert _status(services).attempts == 1


def test_the_sweep_enqueues_an_attempt_when_its_time_comes(services, deliver, run_worker):
    from workers.worker import sweep_stranded

    deliver(SUB_EVENT)
    run_worker()
    assert sweep_stranded(services) == 0  # not due yet
    with services.pool.connection() as conn:
        conn.execute("UPDATE events SET next_attempt_at = now() - interval '1 second' WHERE id = 'evt_retry_1'")
    assert sweep_stranded(services) == 1
    assert services.queue.get_job_ids() == ["event-evt_retry_1-attempt-2"]
    assert sweep_stranded(services) == 1 and services.queue.count == 1  # a second sweep does not double it
    run_worker()
    assert _status(services).attempts == 2
