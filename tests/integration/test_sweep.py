"""Nothing is lost: events stored without a job (Redis down, worker killed) are found and applied."""
from rq.job import Job, JobStatus

from domain import ledger
from tests.support import load_fixture
from workers.queueing import enqueue_event, ensure_enqueued
from workers.worker import sweep_stranded

CUSTOMER_UPDATED = "events/supabase_stripe-sync-engine__packages__fastify-app__src__test__stripe__customer_updated.json"


def _store_without_job(services) -> dict:
    event = load_fixture(CUSTOMER_UPDATED)
    with services.pool.connection() as conn:
        assert ledger.record_event(conn, event)
    return event


def test_sweep_enqueues_events_stored_while_redis_was_down(services, run_worker, admin):
    event = _store_without_job(services)
    run_worker()
    assert admin("GET", f"/events/{event['id']}")[1]["status"] == "received"
    assert sweep_stranded(services, older_than_seconds=0) == 1
    run_worker()
    assert admin("GET", f"/events/{event['id']}")[1]["status"] == "processed"


def test_a_live_job_is_not_doubled(services):
    event = _store_without_job(services)
    assert enqueue_event(services.queue, event["id"]) is not None
    assert ensure_enqueued(services.queue, event["id"]) is None
    assert services.queue.count == 1


def test_a_dead_job_is_replaced(services, run_worker, admin):
    event = _store_without_job(services)
    job = enqueue_event(services.queue, event["id"])
    services.queue.remove(job.id)  # as if a killed worker had taken it and RQ had marked it failed
    job.set_status(JobStatus.FAILED)
    assert ensure_enqueued(services.queue, event["id"]) is not None
    run_worker()
    assert admin("GET", f"/events/{event['id']}")[1]["status"] == "processed"
    assert Job.exists(f"event-{event['id']}", connection=services.redis) is False  # result_ttl=0
