"""Helpers shared by the test suites and their helper modules (conftest files import from here;
nothing imports a conftest): where the real Stripe payloads are, the test settings' secrets, the
Stripe-Signature signer, emptying a test database, and the admin API's time format.
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import psycopg

from webhooks.signature import signature_header

ROOT = Path(__file__).resolve().parents[1]
# Real Stripe payloads (see tests/fixtures/stripe/SOURCES.md), so the tests run from any clone.
FIXTURES = Path(os.environ.get("STRIPE_FIXTURES", ROOT / "tests" / "fixtures" / "stripe"))

WEBHOOK_SECRET = "whsec_test_secret_for_tests"
ADMIN_TOKEN = "test-admin-token"
NO_STRIPE = "http://127.0.0.1:9"  # nothing listens: a test that does not ask for the fake Stripe fails at once
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://root@127.0.0.1:5432/teachery_sync_test")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def load_fixture(relative: str) -> dict:
    """A real Stripe payload under tests/fixtures/stripe (see its SOURCES.md)."""
    return json.loads((FIXTURES / relative).read_text())


def sign(body: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A Stripe-Signature header for body."""
    return signature_header(body, secret, timestamp)


def truncate_all(database_url: str) -> None:
    """Empty every table of a migrated database but the migrations' own record."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'")]
        if tables:
            conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")


def iso(ts: int | None) -> str | None:
    """A Unix time as the admin API shows it."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
