"""`POST /webhooks/stripe` without Flask's request machinery (which cost as much as the INSERT).

A WSGI wrapper around the Flask app: a plain webhook (that path, POST, no query string, a
Content-Length within the limit) goes straight to webhooks.receiver.Receiver, with the same answers,
the same request id (bound on its log lines, echoed in `X-Request-Id`) and the same JSON 500 on a bug.
Anything else (another route, a chunked or oversized body, a query string) is Flask's, as before.
"""
from __future__ import annotations

import json
from http import HTTPStatus

import structlog

from webhooks.request_ids import HEADER, request_id_of

PATH = "/webhooks/stripe"
log = structlog.get_logger("webhooks.errors")
_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}
# The answers nearly every webhook gets, encoded once.
_COMMON = [(answer, json.dumps(answer).encode())
           for answer in ({"received": True}, {"received": True, "duplicate": True})]


class WebhookFastPath:
    def __init__(self, wsgi_app, receiver, max_body: int):
        self.wsgi_app = wsgi_app
        self.receiver = receiver
        self.max_body = max_body

    def __call__(self, environ, start_response):
        length = environ.get("CONTENT_LENGTH") or ""
        if (environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST"
                or environ.get("QUERY_STRING") or not length.isdigit() or int(length) > self.max_body):
            return self.wsgi_app(environ, start_response)
        request_id = request_id_of(environ.get("HTTP_X_REQUEST_ID"))
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            body = environ["wsgi.input"].read(int(length))
            status, answer = self.receiver.receive(body, environ.get("HTTP_STRIPE_SIGNATURE"), request_id)
        except Exception:
            log.exception("unhandled error")
            status, answer = 500, {"error": "internal error"}
        finally:
            structlog.contextvars.clear_contextvars()
        data = _encoded(answer)
        start_response(_STATUS_LINES[status], [
            ("Content-Type", "application/json"), ("Content-Length", str(len(data))), (HEADER, request_id)])
        return [data]


def _encoded(answer: dict) -> bytes:
    for common, encoded in _COMMON:
        if answer == common:
            return encoded
    return json.dumps(answer).encode()
