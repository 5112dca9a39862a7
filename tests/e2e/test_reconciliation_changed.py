"""A changed-since run (the nightly run's scope; `teachery-sync reconcile --changed-since`): it pages
through the account's events since then and re-reads, once each, the customers, charges, refunds and
subscriptions they name, comparing and fixing them like a listing run; nothing else is read."""
from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest

from tests.e2e.test_reconciliation import CH, CUS, PAUSED, SUB, cli, in_sync, jenny, monthly, paid_charge
from tests.stripe_events import DAY, T0, event, iso

pytestmark = pytest.mark.e2e
OTHER = "cus_ReconOther"


def test_a_changed_since_run_rereads_once_each_object_an_event_named(services, send, stripe_api, profile):
    in_sync(send, stripe_api)
    in_sync(send, stripe_api, cus=OTHER, name="Other", suffix="o")
    stripe_api.put(jenny("Jenny Renamed"), monthly(pause=PAUSED), jenny("Other Renamed", OTHER))
    since = T0 + 5 * DAY
    stripe_api.put_event(event("customer.updated", jenny("Other Renamed", OTHER), created=since - 1))  # before
    stripe_api.put_event(*(event("customer.updated", jenny("Jenny Renamed"), created=since + n) for n in range(150)))
    stripe_api.put_event(event("customer.subscription.updated", monthly(pause=PAUSED), created=since + 200),
                         event("charge.refunded", paid_charge(), created=since + 300))
    stripe_api.calls.clear()

    done = cli("--changed-since", iso(since), "--json")

    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    # Per page of events, the objects they name by kind, owners first.
    assert [(d["object"], d["field"], d["stripe"], d["fixed"]) for d in report["drift"]] == [
        (CUS, "name", "Jenny Renamed", True), (SUB, "pause_collection", PAUSED, True)]
    assert report["checked"] == 3  # Jenny, her charge (charge.refunded), her subscription
    assert report["progress"] == {"platform": {"customer": 1, "charge": 1, "subscription": 1}}
    assert profile(CUS)["name"] == "Jenny Renamed" and profile(OTHER)["name"] == "Other"
    reads = [c["path"] for c in stripe_api.calls if c["method"] == "GET"]
    assert set(reads) == {"/v1/events", f"/v1/customers/{CUS}", f"/v1/subscriptions/{SUB}", f"/v1/charges/{CH}"}
    assert reads.count(f"/v1/customers/{CUS}") == 1  # named by 152 events over two pages: read once
    events = [parse_qs(c["query"]) for c in stripe_api.calls_to("/v1/events")]
    assert len(events) == 2 and all(q["created[gte]"] == [str(since)] for q in events)
    with services.pool.connection() as conn:  # what the run read is kept only while it runs
        assert conn.execute("SELECT count(*) FROM reconciliation_seen").fetchone()[0] == 0
