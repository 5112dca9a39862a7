"""Reading requests: the one rule for JSON bodies, for query strings (webhooks/schemas.py), and for ids in paths."""
from __future__ import annotations

import json
from typing import TypeVar

from flask import request
from pydantic import BaseModel, ValidationError
from werkzeug.routing import BaseConverter

from domain.ids import ID_PATTERN
from webhooks.errors import ApiError

Model = TypeVar("Model", bound=BaseModel)


class IdConverter(BaseConverter):
    """`<id:name>` in a route: a path whose id does not fit domain/ids.py matches no route (404)."""
    regex = ID_PATTERN


class CourseIdConverter(BaseConverter):
    """`<course:name>`: a course id as Stripe's metadata.course_id may hold it (free text up to Stripe's 500
    characters: "Python 101 (v2.0)"), so that every enrollment a purchase made can be revoked and granted back;
    only a slash cannot be in a path segment. A grant creates an enrollment only for an id of domain/ids.py."""
    regex = r"[^/]{1,500}"


def json_body():
    """The request body as JSON, whatever its Content-Type says (curl -d sends form-encoded); {} when
    it is empty. Not UTF-8 JSON, nested too deeply, holding a lone surrogate or a field named twice: ApiError (400).
    A field named twice is refused, not read as its last value: a proxy or log that reads the first would see
    another request than the one we act on ({"amount": 100, "amount": 4900} refunded 4900)."""
    raw = request.get_data(cache=True)  # over MAX_CONTENT_LENGTH: 413
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw.decode("utf-8"), object_pairs_hook=_once_each)
    except _NamedTwice as exc:
        raise ApiError(f"the body names the field {exc.args[0][:80]!r} more than once") from None
    except (ValueError, UnicodeDecodeError):
        raise ApiError("the body must be JSON (UTF-8)") from None
    except RecursionError:
        raise ApiError("the body is nested too deeply") from None
    where = _lone_surrogate(body)
    if where is not None:
        raise ApiError(f"{where} is not valid Unicode text: it holds a lone surrogate (\\ud800-\\udfff)")
    return body


class _NamedTwice(Exception):
    pass


def _once_each(pairs: list) -> dict:
    """json.loads' object_pairs_hook: the object, unless a name comes twice."""
    body = dict(pairs)
    if len(body) != len(pairs):
        seen = set()
        raise _NamedTwice(next(k for k, _ in pairs if k in seen or seen.add(k)))
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


def from_query(model: type[Model]) -> Model:
    """The query string as `model` (the first value of each name); ApiError (400) with the first rule
    it breaks, in the model's field order."""
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ApiError(str(first.get("ctx", {}).get("error", first["msg"]))) from None
