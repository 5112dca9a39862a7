"""GET /metrics: what operators graph and alert on, read from the ledger and RQ."""
from tests.conftest import load_fixture

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
