"""Replays are an operator's extra attempts: they never use up the automatic retry schedule, merge while
queued, never land in RQ's failed registry, and every attempt is in the ledger's attempts log."""
import contextlib

from click.testing import CliRunner

from domain import ledger
from teachery_sync.cli import main
from tests.support import NO_STRIPE, TEST_DATABASE_URL, TEST_REDIS_URL
from workers.processing import apply_event
from workers.queueing import RETRY_INTERVALS

EVENT_ID = "evt_replay_1"
SUB_EVENT = {
    "id": EVENT_ID, "object": "event", "type": "customer.subscription.updated", "created": 1700000000,
    "data": {"object": {"id": "sub_RP1", "object": "subscription", "customer": "cus_unknown_RP1",
                        "status": "active"}},
}
ENV = {"DATABASE_URL": TEST_DATABASE_URL, "REDIS_URL": TEST_REDIS_URL, "STRIPE_API_KEY": "sk_test_123",
       "STRIPE_API_BASE": NO_STRIPE}


def _event(services):
    with services.pool.connection() as conn:
        return ledger.get_event(conn, EVENT_ID)


def _waiting_event(services, deliver, run_worker):
    deliver(SUB_EVENT)
    run_worker()  # the customer cannot be fetched: waiting, attempt 1, next try in 5 s
    event = _event(services)
    assert (event.status, event.scheduled_attempts) == ("waiting", 1)
    return event


def test_replays_do_not_use_up_the_retry_schedule(services, deliver, run_worker, admin):
    before = _waiting_event(services, deliver, run_worker)
    for _ in range(12):
        status, body = admin("POST", f"/events/{EVENT_ID}/replay")
        assert status == 202, body
        run_worker()
    event = _event(services)
    assert event.status == "waiting", event.last_error
    assert event.scheduled_attempts == 1 and event.next_attempt_at == before.next_attempt_at  # schedule kept
    assert event.attempts == 13  # every attempt, replays included
    assert services.queue.failed_job_registry.count == 0
    _, shown = admin("GET", f"/events/{EVENT_ID}")
    log = shown["attempts_log"]
    assert [a["kind"] for a in log] == ["automatic"] + ["replay"] * 12
    assert all(a["status"] == "waiting" and "cus_unknown_RP1" in a["error"] and a["at"] for a in log)


def test_replays_of_a_queued_replay_merge_and_a_later_one_runs_again(services, deliver, run_worker, admin):
    _waiting_event(services, deliver, run_worker)
    answers = [admin("POST", f"/events/{EVENT_ID}/replay") for _ in range(4)]
    assert [status for status, _ in answers] == [202] * 4
    assert [body["merged"] for _, body in answers] == [False, True, True, True]
    assert services.queue.count == 1
    run_worker()
    assert services.queue.count == 0
    status, body = admin("POST", f"/events/{EVENT_ID}/replay")  # that job ran: this one runs again
    assert (status, body["merged"]) == (202, False)
    run_worker()
    assert [a["kind"] for a in admin("GET", f"/events/{EVENT_ID}")[1]["attempts_log"]] == \
        ["automatic", "replay", "replay"]


def test_a_replay_that_applies_ends_the_schedule(services, deliver, run_worker, admin, stripe_api):
    _waiting_event(services, deliver, run_worker)
    stripe_api.put({"id": "cus_unknown_RP1", "object": "customer", "name": "Rae", "email": "r@e.x"})
    assert admin("POST", f"/events/{EVENT_ID}/replay")[0] == 202
    run_worker()
    event = _event(services)
    assert (event.status, event.next_attempt_at, event.last_error) == ("processed", None, None)
    assert event.scheduled_attempts == 1 and event.attempts == 2


def test_a_replay_of_an_event_that_gave_up_adds_nothing_to_the_failed_registry(services, deliver, run_worker,
                                                                                  admin):
    _waiting_event(services, deliver, run_worker)
    for _ in range(len(RETRY_INTERVALS)):
        with contextlib.suppress(Exception):  # the last automatic attempt gives up: its job would fail into RQ's registry
            apply_event(services, EVENT_ID, due=True)
    event = _event(services)
    assert event.status == "failed" and event.last_error.startswith(
        f"gave up after {len(RETRY_INTERVALS) + 1} automatic attempts")
    for _ in range(3):
        assert admin("POST", f"/events/{EVENT_ID}/replay")[0] == 202
        run_worker()
    assert services.queue.failed_job_registry.count == 0
    assert _event(services).status == "failed"


def test_the_command_replays_the_same_way(services, deliver, run_worker):
    before = _waiting_event(services, deliver, run_worker)
    runner = CliRunner()
    for _ in range(3):
        done = runner.invoke(main, ["events", "replay", EVENT_ID], env=ENV)
        assert done.exit_code == 0, done.output
    assert services.queue.count == 1  # merged while queued
    run_worker()
    event = _event(services)
    assert (event.status, event.scheduled_attempts, event.next_attempt_at) == ("waiting", 1, before.next_attempt_at)
    assert services.queue.failed_job_registry.count == 0


def test_a_replay_job_that_ended_without_running_is_replaced(services, deliver, run_worker, admin):
    from rq.job import Job, JobStatus

    _waiting_event(services, deliver, run_worker)
    assert admin("POST", f"/events/{EVENT_ID}/replay")[1]["merged"] is False
    [job_id] = services.queue.get_job_ids()
    services.queue.remove(job_id)  # as if its worker had been killed and RQ had failed the job
    Job.fetch(job_id, connection=services.redis).set_status(JobStatus.FAILED)
    status, body = admin("POST", f"/events/{EVENT_ID}/replay")  # same id: RQ's unique=True alone would refuse
    assert (status, body["merged"]) == (202, False)
    assert services.queue.get_job_ids() == [job_id]
    run_worker()
    assert [a["kind"] for a in admin("GET", f"/events/{EVENT_ID}")[1]["attempts_log"]] == ["automatic", "replay"]


def test_a_bulk_replay_pages_through_the_ledger_a_batch_at_a_time(services):
    """2,500 failed events, batches of 1,000: every one gets one replay, in three reads of the ledger."""
    from domain import ledger as ledger_rows
    from workers.replays import replay_matching

    with services.pool.connection() as conn:
        conn.execute("""INSERT INTO events (id, account, type, created, status, payload)
                        SELECT 'evt_bulk_' || lpad(n::text, 5, '0'), '', 'customer.updated', 1700000000 + n % 7,
                               'failed', '{}'::jsonb FROM generate_series(1, 2500) n""")
    pages = []
    real_page = ledger_rows.ids_matching_page

    def counted(conn, **kwargs):
        rows = real_page(conn, **kwargs)
        pages.append(len(rows))
        return rows

    import workers.replays as replays_module
    original = replays_module.ledger.ids_matching_page
    replays_module.ledger.ids_matching_page = counted
    try:
        done = replay_matching(services, status="failed", batch=1000)
    finally:
        replays_module.ledger.ids_matching_page = original
    assert (done.queued, done.merged) == (2500, 0)
    assert pages == [1000, 1000, 500, 0]
    assert len({job.args[0] for job in services.queue.jobs}) == 2500
