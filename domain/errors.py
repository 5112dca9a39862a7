"""How an error reads where one line is all there is room for (a status field, a report, a log line)."""
from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The first line of the error's message (libpq's span several), or its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def one_line(exc: BaseException) -> str:
    """The whole message on one line (libpq's span several), or its type's name when it has none."""
    return " ".join(str(exc).split()) or type(exc).__name__
