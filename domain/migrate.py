"""A small numbered-SQL migration runner: domain/migrations/NNNN_name.sql, applied in order, once each.

Chosen over Alembic because the schema is plain SQL with no ORM to autogenerate from;
an advisory lock makes concurrent `migrate` runs (several release phases) safe.
"""
from __future__ import annotations

import re
from importlib import resources

import psycopg

from domain.db import ensure_database

_LOCK_KEY = 0x7EAC4E85  # any constant; held while migrating
_NAME = re.compile(r"^(\d{4})_[\w-]+\.sql$")


def available() -> list[tuple[int, str, str]]:
    """Every migration shipped with the package, as (version, file name, SQL)."""
    found = []
    for entry in resources.files("domain.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text()))
    return sorted(found)


def migrate(dsn: str) -> list[str]:
    """Create the database when missing and apply pending migrations; returns the names applied."""
    ensure_database(dsn)
    applied: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for version, name, sql in available():
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(sql)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name)
                    )
                applied.append(name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied
