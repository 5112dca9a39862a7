"""Helpers shared by the test suites and their helper modules (conftest files import from here;
nothing imports a conftest): where the real Stripe payloads are, the test settings' secrets, the
Stripe-Signature signer, emptying a test database, and the admin API's time format.
"""
from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from webhooks.signature import signature_header
from workers.event_table import EVENT_HANDLERS

ROOT = Path(__file__).resolve().parents[1]
# Real Stripe payloads (see tests/fixtures/stripe/SOURCES.md), so the tests run from any clone.
FIXTURES = Path(os.environ.get("STRIPE_FIXTURES", ROOT / "tests" / "fixtures" / "stripe"))

WEBHOOK_SECRET = "whsec_test_secret_for_tests"
ADMIN_TOKEN = "test-admin-token"
NO_STRIPE = "http://127.0.0.1:9"  # nothing listens: a test that does not ask for the fake Stripe fails at once
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://root@127.0.0.1:5432/teachery_sync_test")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


# The API versions the payloads are shaped for (see tests/stripe_events.py for what changed when).
OLD = "2020-03-02"
V2022 = "2022-11-15"  # charge.refunds and payment_intent.charges no longer included
V2024 = "2024-06-20"
BASIL = "2025-03-31.basil"  # invoice.parent, invoice.payments, current_period_* on subscription items
API_VERSIONS = (OLD, "2020-08-27", V2022, "2023-10-16", V2024, BASIL)


def at_least(version: str, other: str) -> bool:
    """Whether API version `version` is `other` or later (the date decides)."""
    return version[:10] >= other[:10]


def load_fixture(relative: str) -> dict:
    """A real Stripe payload under tests/fixtures/stripe (see its SOURCES.md)."""
    return json.loads((FIXTURES / relative).read_text())


def sign(body: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A Stripe-Signature header for body."""
    return signature_header(body, secret, timestamp)


def truncate_all(database_url: str) -> None:
    """Empty every table of a migrated database but the migrations' own record. A live worker's statement
    may lock the tables in another order than TRUNCATE: PostgreSQL then ends one of the two as a deadlock,
    and when that is the TRUNCATE it is tried again."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'")]
        if not tables:
            return
        for attempt in range(5):
            try:
                conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
                return
            except psycopg.errors.DeadlockDetected:
                if attempt == 4:
                    raise
                time.sleep(0.1)


def settled_status(event_type: str) -> str:
    """How an event of this type ends once applied: `processed` when the event→handler table handles
    its type, `ignored` when not."""
    return "processed" if event_type in EVENT_HANDLERS else "ignored"


def unsettled(events: list[dict]) -> list[tuple]:
    """(id, type, status, last_error) of the ledger entries (admin API) that did not end as their type should."""
    return [(e["id"], e["type"], e["status"], e.get("last_error")) for e in events
            if e["status"] != settled_status(e["type"])]


def iso(ts: int | None) -> str | None:
    """A Unix time as the admin API shows it."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
