"""Every error answer is JSON, `{"error": "…"}`; the one place where exceptions become answers."""
from __future__ import annotations

import psycopg
import redis
import structlog
from flask import Flask, current_app, jsonify, request
from gunicorn.http.errors import ParseException
from werkzeug.exceptions import HTTPException

from domain.errors import first_line
from domain.ids import ID_RULE

DATABASE_UNAVAILABLE = "database unavailable, retry later"
REDIS_UNAVAILABLE = "redis unavailable, retry later"


class ApiError(Exception):
    """The request cannot be answered as asked: a message and an HTTP status."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


def refused(status: int, reason: str, **context) -> None:
    """The one log line of a request refused for something the caller sent (never its body or a secret)."""
    structlog.get_logger("webhooks.refused").info("request refused", status=status, reason=reason, **context)


def error(message: str, status: int = 400):
    """The error answer: JSON, or the page an installed `error_page` hook renders for a browser. A 4xx is
    logged once, here."""
    if 400 <= status < 500:
        refused(status, message, method=request.method, path=request.path)
    page = current_app.extensions.get("error_page")
    shown = page(message, status) if page else None
    return shown if shown is not None else (jsonify({"error": message}), status)


def _http_error(exc: HTTPException):
    messages = {
        404: f"not found: no such route, or no such id (ids in paths are {ID_RULE})",
        413: "request body too large (limit 1 MiB)",
    }
    body, _ = error(messages.get(exc.code, exc.description or exc.name), exc.code)
    response = current_app.make_response(body)
    response.status_code = exc.code
    for name, value in exc.get_headers(request.environ):  # e.g. Allow on a 405
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _malformed_body(exc: ParseException):
    # gunicorn reads a chunked body only as the app reads it: a bad chunk is raised here, not in its worker
    return error(f"malformed request body: {exc}", 400)


def _data_error(exc: psycopg.DataError):
    # A value the caller sent that PostgreSQL cannot hold (out of range, bad encoding): their error.
    return error(f"invalid value: {first_line(exc)}")


def _database_down(exc: psycopg.OperationalError):
    # Also psycopg_pool's PoolTimeout (no connection in time) and the web pool's DatabaseRefused.
    structlog.get_logger(__name__).warning("database unavailable", path=request.path, error=str(exc))
    return error(DATABASE_UNAVAILABLE, 503)


def _redis_down(exc: redis.RedisError):
    structlog.get_logger(__name__).warning("redis unavailable", path=request.path, error=str(exc))
    return error(REDIS_UNAVAILABLE, 503)


def _unexpected(exc: Exception):
    structlog.get_logger(__name__).exception("unhandled error")
    return error("internal error", 500)


def install(app: Flask) -> None:
    """The app's error handlers: each exception class answered once, the same on every route."""
    app.register_error_handler(ApiError, lambda exc: error(exc.message, exc.status))
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(ParseException, _malformed_body)
    app.register_error_handler(psycopg.DataError, _data_error)
    app.register_error_handler(psycopg.OperationalError, _database_down)
    app.register_error_handler(redis.ConnectionError, _redis_down)
    app.register_error_handler(redis.TimeoutError, _redis_down)
    app.register_error_handler(Exception, _unexpected)
