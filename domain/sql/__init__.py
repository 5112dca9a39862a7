"""The repositories' SQL, kept as SQL, and the one helper that reads rows into dataclasses.

Each `.sql` file beside this module holds the named statements of one group of tables. A statement
starts at its `-- name: some_name` line and runs to the next one; the comment lines under the name
say what it does (they are not sent). Parameters are always `%(name)s` (but in the receiver's
statement, `$n`: domain/ledger.py). A file is read once, when the
module that loads it is imported. The few statements made of pieces (a `{piece}` field, filled with
psycopg.sql) are composed then too, or once per shape and cached: no call parses or formats SQL.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from importlib import resources
from types import SimpleNamespace
from typing import Any, TypeVar

from psycopg import RawCursor, sql
from psycopg.rows import class_row, dict_row

T = TypeVar("T")

_NAME = re.compile(r"^-- name: (\w+)[ \t]*$", re.MULTILINE)
_COMMENT_LINE = re.compile(r"^[ \t]*--.*(?:\n|$)", re.MULTILINE)


def parse(text: str) -> dict[str, str]:
    """The statements of one file's text, by name, without their comment lines."""
    head, *parts = _NAME.split(text)
    if _COMMENT_LINE.sub("", head).strip():
        raise ValueError("SQL before the first `-- name:` line")
    statements: dict[str, str] = {}
    for name, body in zip(parts[::2], parts[1::2], strict=True):
        if name in statements:
            raise ValueError(f"two statements named {name}")
        statements[name] = _COMMENT_LINE.sub("", body).strip().removesuffix(";").rstrip()
    return statements


@cache
def load(group: str) -> SimpleNamespace:
    """The statements of domain/sql/<group>.sql, as attributes."""
    return SimpleNamespace(**parse(resources.files(__name__).joinpath(f"{group}.sql").read_text()))


def compose(template: str, **pieces: str | sql.Composable) -> str:
    """A statement with its `{name}` fields filled: a str piece is SQL text (another named statement),
    other pieces are psycopg.sql objects (Literal, Identifier, Placeholder, ...). Call it once per
    shape (at import, or behind a cache), not per call."""
    filled = {name: sql.SQL(piece) if isinstance(piece, str) else piece for name, piece in pieces.items()}
    return sql.SQL(template).format(**filled).as_string(None)


@cache
def _rows_as(into: type) -> Any:
    return dict_row if into is dict else class_row(into)


def fetch_one(conn, into: type[T], query: str, params: dict | None = None) -> T | None:
    """The first row the query returns, as `into` (a dataclass whose fields are the columns, or dict)."""
    return conn.cursor(row_factory=_rows_as(into)).execute(query, params).fetchone()


def fetch_all(conn, into: type[T], query: str, params: dict | None = None) -> list[T]:
    """Every row the query returns, as `into` (a dataclass whose fields are the columns, or dict)."""
    return conn.cursor(row_factory=_rows_as(into)).execute(query, params).fetchall()


def fetch_value(conn, query: str, params: dict | None = None) -> Any:
    """The first column of the first row, or None when there is no row."""
    row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def fetch_column(conn, query: str, params: dict | None = None) -> list:
    """The first column of every row."""
    return [row[0] for row in conn.execute(query, params).fetchall()]


def fetch_column_raw(conn, query: str, params: Sequence) -> list:
    """The first column of every row of a statement written with PostgreSQL's own $1, $2… placeholders,
    sent as it is (psycopg's RawCursor: no parsing of the statement on the way)."""
    with RawCursor(conn) as cursor:
        return [row[0] for row in cursor.execute(query, params).fetchall()]
