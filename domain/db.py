"""Connections: one pool per process, opened after fork, and DSN helpers."""
from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool


class DatabaseUnavailable(Exception):
    """PostgreSQL did not answer."""


def _one_line(exc: Exception) -> str:
    """libpq's messages run over several lines; the CLI promises one."""
    return " ".join(str(exc).split())


def redact(dsn: str) -> str:
    """The DSN with its password hidden, for error messages."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparseable DATABASE_URL>"
    if "password" in params:
        params["password"] = "***"
    return make_conninfo(**params) or "(libpq defaults)"


def make_pool(dsn: str, *, min_size: int = 1, max_size: int = 8, name: str = "teachery") -> ConnectionPool:
    """A pool that opens lazily: call it after fork (psycopg connections are not process-safe)."""
    return ConnectionPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        name=name,
        open=False,
        timeout=10,
        kwargs={"autocommit": False},
        reconnect_timeout=30,
    )


def ensure_database(dsn: str) -> bool:
    """Create the database named in the DSN when it is missing; True when created."""
    params = conninfo_to_dict(dsn)
    dbname = params.get("dbname")
    try:
        psycopg.connect(dsn, connect_timeout=10).close()
        return False
    except psycopg.OperationalError as exc:
        if not dbname or "does not exist" not in str(exc):
            raise DatabaseUnavailable(f"cannot connect to PostgreSQL at {redact(dsn)}: {_one_line(exc)}") from exc
    admin = make_conninfo(dsn, dbname="postgres")
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(dbname)))
    except psycopg.errors.DuplicateDatabase:
        return False
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot create database {dbname!r} at {redact(dsn)}: {_one_line(exc)}") from exc
    return True
