"""Connections: one pool per process, opened after fork, and DSN helpers."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

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


def dsn_problem(dsn: str) -> str | None:
    """Why libpq cannot parse the DSN, or None. Never libpq's own message: it quotes the string,
    password included."""
    try:
        conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return ("DATABASE_URL is neither a postgresql:// URL nor a key=value DSN "
                "(e.g. postgresql://user@127.0.0.1:5432/teachery_sync)")
    return None


REDIS_SCHEMES = ("redis", "rediss", "unix")


def redact_url(url: str) -> str:
    """A URL (Redis's, say) with its password hidden, for messages; "<unparseable URL>" when it is not one."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparseable URL>"
    if password is not None:
        userinfo, _, hostinfo = parts.netloc.rpartition("@")
        url = url.replace(parts.netloc, f"{userinfo.split(':', 1)[0]}:***@{hostinfo}", 1)
    return _QUERY_PASSWORD.sub(r"\1***", url)  # redis-py also reads ?password=


_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.I)


def redis_url_problem(url: str) -> str | None:
    """Why redis-py would refuse the URL, or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError:
        return f"REDIS_URL is not a URL: {redact_url(url)}"
    if parts.scheme not in REDIS_SCHEMES:
        return f"REDIS_URL must start with redis://, rediss:// or unix://, not {redact_url(url)}"
    return None


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
