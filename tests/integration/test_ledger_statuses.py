"""Ledger statuses: `processing` was never stored; the event list still takes it as a filter (it matches
nothing), and the schema refuses it."""
from __future__ import annotations

import json

import psycopg
import pytest
from click.testing import CliRunner

from domain import ledger
from teachery_sync.cli import main
from tests.stripe_events import T0, customer, event


def _customer(customer_id: str) -> dict:
    return customer(customer_id, email=f"{customer_id}@e.x", name=customer_id)


def test_status_processing_is_a_filter_that_matches_nothing(admin, send):
    sent = event("customer.created", _customer("cus_LS_Ada"), created=T0)
    send(sent)
    status, body = admin("GET", "/events?status=processing")
    assert (status, body) == (200, {"events": []})
    status, body = admin("GET", "/events?status=processed&type=customer.created")
    assert status == 200 and [e["id"] for e in body["events"]] == [sent["id"]]
    assert admin("GET", "/events?status=started")[0] == 400


def test_the_command_line_takes_processing_and_lists_nothing(services, send, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", services.settings.database_url)
    monkeypatch.setenv("REDIS_URL", services.settings.redis_url)
    send(event("customer.created", _customer("cus_LS_Eve"), created=T0))
    done = CliRunner().invoke(main, ["events", "list", "--status", "processing", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == []
    assert CliRunner().invoke(main, ["events", "list", "--status", "started"]).exit_code == 2


def test_the_schema_refuses_processing(services):
    with services.pool.connection() as conn:
        ledger.record_event(conn, event("customer.created", _customer("cus_LS_Bob"), created=T0))
        with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
            conn.execute("UPDATE events SET status = 'processing'")


def test_events_matching_a_status_and_a_time(services, send):
    send(event("customer.created", _customer("cus_LS_Cy"), created=T0 + 1),
         event("customer.created", _customer("cus_LS_Di"), created=T0))
    with services.pool.connection() as conn:
        def ids_matching(**filters):
            return [row[0] for row in ledger.ids_matching_page(conn, **filters)]

        everything = ids_matching()
        assert len(everything) == 2 and ids_matching(status="processed") == everything
        assert [ledger.get_event(conn, i).created for i in everything] == [T0, T0 + 1]  # Stripe's order
        assert ids_matching(status="failed") == []
        assert ids_matching(since=ledger.get_event(conn, everything[0]).received_at) != []
