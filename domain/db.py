"""Connections: one pool per process, opened after fork, and DSN helpers."""
from __future__ import annotations

import re
import select
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from domain.breaker import Breaker
from domain.errors import one_line

# The web's pool fails fast: a request waits at most WEB_POOL_TIMEOUT seconds for a connection (and a
# new connection at most WEB_CONNECT_TIMEOUT, even when the server accepts TCP and then says nothing);
# after a failure its breaker refuses at once for WEB_BREAKER_COOLDOWN seconds, then lets one probe try.
WEB_POOL_TIMEOUT = 2.0
WEB_CONNECT_TIMEOUT = 2  # libpq's minimum
WEB_BREAKER_COOLDOWN = 1.0


class DatabaseUnavailable(Exception):
    """PostgreSQL did not answer."""


def _userinfo(url: str) -> tuple[str, str, str, str] | None:
    """(scheme, user, password, what follows the last `@`) of a URL with a password, read by hand: also when
    the password was written with a `/`, `?` or `#` left unescaped, which urlsplit and libpq then read as a
    path, query, fragment or port (and printed as such). None without one. A query holding both `:` and `@`
    is taken for a password too: hiding it is the safe mistake."""
    scheme, sep, rest = url.partition("://")
    userinfo, _, hostinfo = rest.rpartition("@")
    user, colon, password = userinfo.partition(":")
    return (scheme, user, password, hostinfo) if sep and colon and password else None


def loose_password(url: str) -> str | None:
    """What a URL holds between `user:` and its last `@` (see _userinfo); None without one."""
    found = _userinfo(url)
    return found[2] if found else None


def _hide_loose_password(url: str) -> str:
    found = _userinfo(url)
    if found is None:
        return url
    scheme, user, _, hostinfo = found
    return f"{scheme}://{user}:***@{hostinfo}"


def redact(dsn: str) -> str:
    """The DSN with its password hidden, for error messages."""
    dsn = _hide_loose_password(dsn)
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
    url = _hide_loose_password(url)
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


class DatabaseRefused(PoolTimeout):
    """PostgreSQL failed moments ago: the caller is refused at once rather than made to wait for it."""


class FailFastPool(ConnectionPool):
    """A pool with a breaker: once getting a connection failed, or a connection broke in use, callers are
    refused at once (DatabaseRefused, a PoolTimeout) until a probe gets a connection again."""

    def __init__(self, *args, breaker: Breaker, **kwargs):
        self.breaker = breaker
        super().__init__(*args, **kwargs)

    def getconn(self, timeout: float | None = None):
        if not self.breaker.admit():
            raise DatabaseRefused(f"PostgreSQL failed moments ago ({self.breaker.last_error}); not waiting for it")
        try:
            conn = super().getconn(timeout)
        except psycopg.OperationalError as exc:  # PoolTimeout: no working connection in time
            if timeout is None or timeout >= self.timeout:
                self.breaker.failed(str(exc))
            else:  # a caller that chose to wait less (a readiness check) proves nothing about the server
                self.breaker.done()
            raise
        except BaseException:
            self.breaker.done()
            raise
        self.breaker.succeeded()
        return conn

    def putconn(self, conn) -> None:
        if conn.broken:  # the server went away while the connection was in use
            self.breaker.failed("a connection was lost")
        super().putconn(conn)


def check_if_readable(conn) -> None:
    """The web pool's check before handing a connection out, without a round trip in the usual case: an
    idle connection has nothing to read, so one whose socket is readable was most likely closed by the
    server (a restart, a terminated backend): only then is it checked for real (raising, so the pool
    replaces it). Checking every connection with a query cost a third of a webhook's time."""
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    if readable:
        ConnectionPool.check_connection(conn)


def make_pool(dsn: str, *, min_size: int = 1, max_size: int = 8, name: str = "teachery",
              fail_fast: bool = False) -> ConnectionPool:
    """A pool that opens lazily: call it after fork (psycopg connections are not process-safe).

    fail_fast (the web's): short timeouts, each connection checked before it is handed out (so the
    connections a restarted server dropped are replaced, not used: check_if_readable), and a breaker (FailFastPool).
    """
    connect_timeout = WEB_CONNECT_TIMEOUT if fail_fast else 10
    kwargs = {"autocommit": False}
    if "connect_timeout" not in _params(dsn):
        kwargs["connect_timeout"] = connect_timeout
    options = dict(min_size=min_size, max_size=max_size, name=name, open=False, kwargs=kwargs)
    if not fail_fast:
        return ConnectionPool(dsn, timeout=10, reconnect_timeout=30, **options)
    # reconnect_timeout: the pool stops its own retries soon, so that once the server is back the
    # breaker's next probe makes a new attempt at once instead of waiting out a long backoff.
    return FailFastPool(dsn, breaker=Breaker(WEB_BREAKER_COOLDOWN), timeout=WEB_POOL_TIMEOUT,
                        reconnect_timeout=3 * WEB_CONNECT_TIMEOUT, check=check_if_readable, **options)


def _params(dsn: str) -> dict:
    try:
        return conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return {}


def ensure_database(dsn: str) -> bool:
    """Create the database named in the DSN when it is missing; True when created."""
    params = conninfo_to_dict(dsn)
    dbname = params.get("dbname")
    try:
        psycopg.connect(dsn, connect_timeout=10).close()
        return False
    except psycopg.OperationalError as exc:
        if not dbname or "does not exist" not in str(exc):
            raise DatabaseUnavailable(f"cannot connect to PostgreSQL at {redact(dsn)}: {one_line(exc)}") from exc
    admin = make_conninfo(dsn, dbname="postgres")
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(dbname)))
    except psycopg.errors.DuplicateDatabase:
        return False
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot create database {dbname!r} at {redact(dsn)}: {one_line(exc)}") from exc
    return True
