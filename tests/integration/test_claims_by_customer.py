"""Claims are partitioned by customer: two transactions claiming at once never hold one customer's events."""
import time

import psycopg
import pytest

from domain import ledger
from workers import draining

T0 = 1_764_000_000


def _event(n: int, customer: int, type_: str = "customer.updated", created: int = T0) -> dict:
    cus = f"cus_P{customer}"
    obj = {"id": cus, "object": "customer", "name": f"P {customer}", "email": f"p{customer}@example.com"}
    if type_.startswith("customer.subscription"):
        obj = {"id": f"sub_P{customer}", "object": "subscription", "customer": cus, "status": "active"}
    return {"id": f"evt_P{n:03d}", "object": "event", "type": type_, "created": created + n, "livemode": False,
            "data": {"object": obj}}


def _customers(events) -> set[str]:
    return {e.payload["data"]["object"].get("customer") or e.payload["data"]["object"]["id"] for e in events}


@pytest.fixture
def stored(services, deliver):
    """Twelve events of four customers (three each, interleaved in time), received, with no drain run."""
    services.redis.set("teachery:drain-requested", 1)  # no drain job: the claims below are the only ones
    for n in range(12):
        assert deliver(_event(n, n % 4, "customer.subscription.updated" if n % 3 else "customer.updated")
                       ).status_code == 200


def _connect(services):
    return psycopg.connect(services.settings.database_url)


def test_two_claims_at_once_never_share_a_customer(services, stored):
    with _connect(services) as first, _connect(services) as second:
        a = ledger.claim_next(first, limit=4)  # a transaction each, both open
        b = ledger.claim_next(second, limit=12)
        assert len(a) == 4 and _customers(a) == {"cus_P0", "cus_P1", "cus_P2", "cus_P3"}
        assert b == []  # every customer is held by the first: their later events wait for it
        first.rollback()
        b = ledger.claim_next(second, limit=12)
        assert len(b) == 12  # released: all of them, in Stripe's order
        assert [e.id for e in b] == [f"evt_P{n:03d}" for n in range(12)]


def test_a_claim_takes_the_customers_that_another_does_not_hold(services, stored):
    with _connect(services) as first, _connect(services) as second:
        a = ledger.claim_next(first, limit=2)  # the first two events: customers 0 and 1
        b = ledger.claim_next(second, limit=12)
        assert _customers(a) == {"cus_P0", "cus_P1"}
        assert _customers(b) == {"cus_P2", "cus_P3"} and len(b) == 6  # all of theirs, none of the others'
        assert not {e.id for e in a} & {e.id for e in b}


def test_a_killed_workers_customers_are_free_again(services, stored):
    """Its connection goes with it: the row locks and the customers' locks are released."""
    first = _connect(services)
    held = ledger.claim_next(first, limit=12)
    assert len(held) == 12
    with _connect(services) as killer:
        pid = first.info.backend_pid
        killer.execute("SELECT pg_terminate_backend(%s)", (pid,))
        for _ in range(100):  # the signal is sent at once; the backend ends (and lets go) a moment later
            if not killer.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
                break
            time.sleep(0.05)
    with _connect(services) as second:
        assert len(ledger.claim_next(second, limit=12)) == 12
    first.close()


def test_a_refund_goes_with_its_charges_customer(services, deliver):
    """A refund names only its charge: it is grouped with the customer whose payment that charge is."""
    charge = {"id": "ch_P1", "object": "charge", "amount": 4900, "currency": "usd", "customer": "cus_P1",
              "status": "succeeded", "payment_intent": "pi_P1", "created": T0, "amount_refunded": 0,
              "metadata": {}, "billing_details": {"name": "P", "email": "p@example.com"}}
    refund = {"id": "re_P1", "object": "refund", "amount": 100, "currency": "usd", "charge": "ch_P1",
              "status": "succeeded", "reason": None, "metadata": {}}
    services.redis.set("teachery:drain-requested", 1)
    deliver({"id": "evt_P_charge", "object": "event", "type": "charge.succeeded", "created": T0, "livemode": False,
             "data": {"object": charge}})
    with services.pool.connection() as conn:
        conn.execute("INSERT INTO customers (account, stripe_customer_id, name) VALUES ('', 'cus_P1', 'P')")
    draining.drain(services)
    deliver({"id": "evt_P_refund", "object": "event", "type": "refund.created", "created": T0 + 5,
             "livemode": False, "data": {"object": refund}})
    deliver(_event(99, 1))  # customer.updated of cus_P1
    with _connect(services) as first, _connect(services) as second:
        [a] = ledger.claim_next(first, limit=1)
        assert a.id == "evt_P_refund"
        assert ledger.claim_next(second, limit=10) == []  # cus_P1 is held by the refund's claim


def test_a_refund_goes_with_the_customer_of_a_charge_being_recorded(services, deliver):
    """The charge's payment is not recorded yet (another batch holds its event): the charge event among
    the candidates names the customer."""
    charge = {"id": "ch_Q1", "object": "charge", "amount": 4900, "currency": "usd", "customer": "cus_Q1",
              "status": "succeeded", "payment_intent": "pi_Q1", "created": T0, "amount_refunded": 0, "metadata": {}}
    refund = {"id": "re_Q1", "object": "refund", "amount": 100, "currency": "usd", "charge": "ch_Q1",
              "status": "succeeded", "reason": None, "metadata": {}}
    services.redis.set("teachery:drain-requested", 1)
    deliver({"id": "evt_Q_refund", "object": "event", "type": "refund.created", "created": T0 + 5,
             "livemode": False, "data": {"object": refund}})
    deliver({"id": "evt_Q_charge", "object": "event", "type": "charge.succeeded", "created": T0, "livemode": False,
             "data": {"object": charge}})
    with _connect(services) as first, _connect(services) as second:
        [a] = ledger.claim_next(first, limit=1)
        assert a.id == "evt_Q_charge"
        assert ledger.claim_next(second, limit=10) == []  # the refund: cus_Q1's, held by the first


def test_a_per_event_job_waits_for_the_batch_that_holds_its_customer(services, stored):
    with _connect(services) as first, _connect(services) as second:
        ledger.claim_next(first, limit=1)  # cus_P0's first event: cus_P0 is held
        second.execute("SET lock_timeout = '200ms'")
        ledger.lock_customer_of(second, "evt_P001")  # cus_P1: free
        with pytest.raises(psycopg.errors.LockNotAvailable):
            ledger.lock_customer_of(second, "evt_P004")  # cus_P0's: waits for the first
