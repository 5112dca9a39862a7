"""A small numbered-SQL migration runner: domain/migrations/NNNN_name.sql, applied in order, once each.

Chosen over Alembic because the schema is plain SQL with no ORM to autogenerate from;
an advisory lock makes concurrent `migrate` runs (several release phases) safe.
"""
from __future__ import annotations

import re
from importlib import resources

import psycopg

from domain.db import ensure_database
from domain.sql import fetch_column, load

Q = load("migrate")

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
        conn.execute(Q.lock, {"key": _LOCK_KEY})
        try:
            conn.execute(Q.create_table)
            done = set(fetch_column(conn, Q.applied))
            for version, name, sql in available():
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(sql)
                    conn.execute(Q.record, {"version": version, "name": name})
                applied.append(name)
        finally:
            conn.execute(Q.unlock, {"key": _LOCK_KEY})
    return applied
