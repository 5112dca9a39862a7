"""GET /metrics: what operators graph and alert on, read from the ledger and RQ."""
from domain import ledger
from tests.stripe_events import T0, customer, event
from tests.support import load_fixture

UPDATED = "events/supabase_stripe-sync-engine__packages__fastify-app__src__test__stripe__customer_updated.json"


def _value(text: str, name: str) -> float:
    [line] = [line for line in text.splitlines() if line.split(" ")[0] == name]
    return float(line.split()[-1])


def test_metrics_follow_the_ledger(client, deliver, run_worker):
    deliver(load_fixture(UPDATED))
    text = client.get("/metrics").get_data(as_text=True)
    assert 'teachery_events{status="received"} 1.0' in text
    assert 'teachery_queue_jobs{state="queued"} 1.0' in text
    assert _value(text, "teachery_oldest_unapplied_event_age_seconds") >= 0
    run_worker()
    text = client.get("/metrics").get_data(as_text=True)
    assert 'teachery_events{status="processed"} 1.0' in text
    assert 'teachery_events{status="received"} 0.0' in text
    assert _value(text, "teachery_oldest_unapplied_event_age_seconds") == 0


def test_status_counts_of_a_big_ledger_come_from_the_statistics(services):
    """Above `exact_below` events the gauges stop reading every event: the unsettled statuses are counted
    from their indexes, processed and ignored estimated from PostgreSQL's statistics (exact after ANALYZE)."""
    statuses = ["processed"] * 5 + ["ignored"] * 3 + ["received"] * 2 + ["waiting"] * 2 + ["failed"] * 2
    with services.pool.connection() as conn:
        for n, status in enumerate(statuses):
            about = customer(f"cus_SC{n}", email=f"c{n}@e.x", name="C")
            ledger.record_event(conn, event("customer.updated", about, created=T0 + n))
            conn.execute("UPDATE events SET status = %s WHERE created = %s", (status, T0 + n))
        conn.commit()
        conn.execute("SELECT pg_stat_force_next_flush()")  # this connection's inserts, counted before ANALYZE
        conn.commit()
        conn.execute("ANALYZE events")
        conn.commit()
        exact = ledger.count_by_status(conn)
        assert exact == {"processed": 5, "ignored": 3, "received": 2, "waiting": 2, "failed": 2}
        assert ledger.status_counts(conn, exact_below=0) == exact
        conn.execute("UPDATE events SET status = 'processed' WHERE status = 'received'")
        assert ledger.status_counts(conn, exact_below=0)["received"] == 0  # read from the index, at once
