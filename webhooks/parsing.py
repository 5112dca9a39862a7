"""Reading requests: the one rule for JSON bodies, whole numbers in query strings, and ids in paths."""
from __future__ import annotations

import json
import re

from flask import request
from werkzeug.routing import BaseConverter

from domain.ids import ID_PATTERN
from webhooks.errors import ApiError

_ASCII_DIGITS = re.compile(r"[0-9]{1,9}")


class IdConverter(BaseConverter):
    """`<id:name>` in a route: a path whose id does not fit domain/ids.py matches no route (404)."""
    regex = ID_PATTERN


def json_body():
    """The request body as JSON, whatever its Content-Type says (curl -d sends form-encoded); {} when
    it is empty. Not UTF-8 JSON, nested too deeply, or holding a lone surrogate: ApiError (400)."""
    raw = request.get_data(cache=True)  # over MAX_CONTENT_LENGTH: 413
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise ApiError("the body must be JSON (UTF-8)") from None
    except RecursionError:
        raise ApiError("the body is nested too deeply") from None
    where = _lone_surrogate(body)
    if where is not None:
        raise ApiError(f"{where} is not valid Unicode text: it holds a lone surrogate (\\ud800-\\udfff)")
    return body


def _lone_surrogate(body) -> str | None:
    """Where in the body a string (or key) holds a lone surrogate, which no database or API can store."""
    stack = [("the body", body)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str) and not _encodable(value):
            return where
        if isinstance(value, dict):
            for key, item in value.items():
                if not _encodable(key):
                    return f"a field name in {where}"
                stack.append((key if where == "the body" else f"{where}.{key}", item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", item) for i, item in enumerate(value))
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def query_int(name: str, default: int, low: int, high: int) -> int:
    """A whole number from the query string, written in ASCII digits (int() would also take "١٢")."""
    raw = request.args.get(name) or str(default)
    if not _ASCII_DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        raise ApiError(f"{name} must be a whole number from {low} to {high}, in digits 0-9")
    return int(raw)
