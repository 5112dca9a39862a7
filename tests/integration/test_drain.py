"""One drain job applies the ledger's received events, in batches, in Stripe's order."""
from domain import ledger
from workers import draining
from workers.queueing import DRAIN, drain_started, request_drain

T0 = 1_764_000_000


def _event(n: int, type_: str, obj: dict, created: int = T0) -> dict:
    return {"id": f"evt_drain_{n}", "object": "event", "type": type_, "created": created, "livemode": False,
            "data": {"object": obj}}


SESSION = {"id": "cs_D1", "object": "checkout.session", "mode": "payment", "customer": "cus_D1",
           "payment_intent": "pi_D1", "payment_status": "paid", "amount_total": 4900, "currency": "usd",
           "created": T0, "customer_details": {"email": "d1@example.com", "name": "Dee"},
           "metadata": {"course_id": "course_d"}}
SUBSCRIPTION = {"id": "sub_D1", "object": "subscription", "customer": "cus_D1", "status": "active",
                "pause_collection": None, "cancel_at_period_end": False, "cancel_at": None, "canceled_at": None,
                "ended_at": None, "metadata": {"course_id": "course_d_sub"}, "current_period_end": T0 + 86400}
REFUND = {"id": "re_D1", "object": "refund", "amount": 1000, "currency": "usd", "charge": "ch_D1",
          "status": "succeeded", "reason": None, "metadata": {}}
CHARGE = {"id": "ch_D1", "object": "charge", "amount": 4900, "currency": "usd", "customer": "cus_D1",
          "status": "succeeded", "payment_intent": "pi_D1", "created": T0, "amount_refunded": 0,
          "metadata": {"course_id": "course_d"}}

# Delivered newest-kind first within each second: the order that made events wait.
STORY = [
    _event(1, "customer.subscription.created", SUBSCRIPTION),
    _event(2, "charge.refunded", {**CHARGE, "amount_refunded": 1000}, T0 + 10),
    _event(3, "refund.created", REFUND, T0 + 10),
    _event(4, "charge.succeeded", CHARGE),
    _event(5, "checkout.session.completed", SESSION),
]


def test_many_deliveries_queue_one_drain_job(services, deliver, run_worker, admin):
    for event in STORY:
        assert deliver(event).status_code == 200
    assert services.queue.count == 1  # not one job per event
    [job] = services.queue.get_jobs()
    assert job.func_name == DRAIN
    run_worker()
    with services.pool.connection() as conn:
        assert ledger.count_by_status(conn) == {"processed": len(STORY)}


def test_events_are_applied_in_stripes_order_without_waiting(services, deliver, run_worker, admin):
    for event in STORY:
        deliver(event)
    run_worker()
    with services.pool.connection() as conn:
        log = {e["id"]: [a["status"] for a in ledger.attempts_log(conn, e["id"])] for e in STORY}
    assert log == {e["id"]: ["processed"] for e in STORY}  # nothing waited for what came later
    status, profile = admin("GET", "/stripe-customers/cus_D1")
    assert status == 200 and profile["payments"][0]["amount_refunded"] == 1000


def test_an_event_stored_after_a_drain_started_gets_a_drain_of_its_own(services):
    assert request_drain(services.queue) is not None
    assert request_drain(services.queue) is None  # one is pending: it will see the event
    drain_started(services.queue)  # the job ran its first claim from here on
    assert request_drain(services.queue) is not None


def test_a_drain_applies_in_batches_until_none_is_left(services, deliver):
    services.redis.set("teachery:drain-requested", 1)  # no jobs: the receiver's requests are absorbed
    for event in STORY:
        deliver(event)
    assert services.queue.count == 0
    assert draining.drain(services, batch_size=2) == len(STORY)
    with services.pool.connection() as conn:
        assert ledger.count_by_status(conn) == {"processed": len(STORY)}
    assert draining.drain(services) == 0


def test_a_drain_that_leaves_events_asks_for_another(services, deliver, run_worker):
    services.redis.set("teachery:drain-requested", 1)
    for event in STORY:
        deliver(event)
    drain_started(services.queue)  # as the job does
    assert draining.drain(services, batch_size=2, max_seconds=0) == 2  # handed over after one batch
    [job] = services.queue.get_jobs()  # the rest: a drain that a free worker takes
    assert job.func_name == DRAIN
    run_worker()
    with services.pool.connection() as conn:
        assert ledger.count_by_status(conn) == {"processed": len(STORY)}


def test_a_wait_on_what_another_workers_batch_committed_meanwhile_is_woken(services, deliver, monkeypatch):
    """Two batches in flight: one waits for the customer that the other records. The recording batch's
    own look for waiters ran before the waiting one committed; the waiting batch, once committed, sees
    the customer and wakes its event instead of leaving it to its retry time."""
    from workers.context import Waiting
    from workers.processing import Outcome

    services.redis.set("teachery:drain-requested", 1)
    subscription, checkout = STORY[0], STORY[4]
    deliver(subscription)
    assert draining.drain(services) == 1
    with services.pool.connection() as conn:
        waiting = ledger.get_event(conn, subscription["id"])
    assert (waiting.status, waiting.waiting_on) == ("waiting", "cus_D1")
    deliver(checkout)
    with monkeypatch.context() as m:  # the other batch: its look for waiters missed this one
        m.setattr(draining, "wake", lambda services, ids: None)
        m.setattr("workers.processing.wake", lambda services, ids: None)
        assert draining.drain(services) == 1
    assert services.queue.count == 0
    outcome = Outcome(ledger.EventStatus.WAITING, error=Waiting("cus_D1", "waiting for customer", unseen=True))
    draining._wake_across_workers(services, [waiting], {waiting.id: outcome})
    assert services.queue.get_job_ids() == [f"event-{subscription['id']}-wake"]


def test_a_drain_that_found_nothing_looks_again_so_a_webhook_a_moment_later_needs_no_request(services):
    """The web skips asking for a drain it asked for a moment ago (DrainRequests): the drain it asked
    for must still see an event committed up to DRAIN_LINGER after the request."""
    import threading
    import time

    from workers.queueing import DRAIN_REQUEST_INTERVAL

    drained = []
    job = threading.Thread(target=lambda: drained.append(draining.drain(services)))
    job.start()  # finds nothing at first
    time.sleep(DRAIN_REQUEST_INTERVAL / 2)
    with services.pool.connection() as conn:
        assert ledger.record_event(conn, STORY[0])
    job.join(5)
    assert drained == [1]
    with services.pool.connection() as conn:
        assert "received" not in ledger.count_by_status(conn)  # applied (it waits for its customer)


def test_a_drain_that_ends_early_asks_for_the_next_even_with_a_batch_to_spare(services, deliver):
    services.redis.set("teachery:drain-requested", 1)
    deliver(STORY[0])
    drain_started(services.queue)
    assert draining.drain(services, batch_size=50, max_seconds=0) == 1
    [job] = services.queue.get_jobs()
    assert job.func_name == DRAIN


def test_a_write_that_fails_unread_undoes_only_its_own_event(services, deliver, monkeypatch):
    """Writes are sent without waiting for their answers: when one fails, the batch is applied again
    one event at a time, so the event that sent it is the only one undone, whichever event's read
    first met the error."""
    from workers import event_table

    def write_badly(ctx):  # a write whose answer nobody reads, and that fails
        ctx.conn.execute("INSERT INTO customers (account, stripe_customer_id) VALUES (NULL, 'cus_bad')")

    monkeypatch.setitem(event_table.EVENT_HANDLERS, "customer.discount.created", write_badly)
    services.redis.set("teachery:drain-requested", 1)
    bad = _event(0, "customer.discount.created", {"id": "di_1", "object": "discount", "customer": "cus_X"}, T0 - 1)
    for event in [bad] + STORY:
        deliver(event)
    assert draining.drain(services) == len(STORY) + 1
    with services.pool.connection() as conn:
        failed = ledger.get_event(conn, bad["id"])
        assert ledger.count_by_status(conn) == {"processed": len(STORY), failed.status: 1}
        assert failed.status == "failed" and "NotNullViolation" in failed.last_error
        assert failed.next_attempt_at is not None  # a passing fault for all we know: retried with backoff
        assert conn.execute("SELECT count(*) FROM customers WHERE stripe_customer_id = 'cus_bad'").fetchone()[0] == 0
