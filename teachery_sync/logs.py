"""Logging for every process (web, worker, CLI, dev): structlog over the standard library.

`configure_logging(format)` runs once per process, from the command line's group callback, before
any command. Our structlog lines and the standard library's (gunicorn, rq, psycopg_pool, stripe)
go through one handler on stderr and one `structlog.stdlib.ProcessorFormatter`, so they come out
alike: a JSON object per line (`json`, the default) or a readable line (`console`, `dev`'s
default), each with an ISO 8601 UTC `timestamp`, `level`, `logger` and whatever is bound in
structlog's contextvars (`request_id` during an HTTP request, `event_id` while an event is
applied). Tracebacks never show local variables (they held the settings, secrets and all), and
a last step masks the process's own secrets should one slip into a message.
"""
from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

import structlog
from gunicorn import glogging
from structlog.tracebacks import ExceptionDictTransformer

DEFAULT_FORMAT = "json"
QUIET_LOGGERS = {
    "stripe": logging.WARNING,  # stripe-python logs every request and response at INFO
    "urllib3": logging.WARNING,
    "pgserver": logging.WARNING,  # dev's embedded PostgreSQL: initdb's whole output at INFO on the first start
}
# RQ logs each job (its description, "Job OK", how long its result is kept) and its registry
# cleaning at INFO: our own lines say what each job did. Of RQ's INFO lines only these stay.
RQ_INFO_KEPT = ("started with PID", "Listening on", "shut down", "stopping on request", "quitting", "suspended")
MIN_SCRUBBED_LENGTH = 8  # shorter "secrets" would mask ordinary words
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class _StderrHandler(logging.StreamHandler):
    """A stream handler on sys.stderr as it is at each record (click's test runner swaps it)."""

    _teachery = True

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def _quiet_rq(record: logging.LogRecord) -> bool:
    if not record.name.startswith("rq.") or record.levelno >= logging.WARNING:
        return True
    return any(kept in str(record.msg) for kept in RQ_INFO_KEPT)


def _plain(logger, name, event_dict):
    """RQ colours its messages when stdout is a terminal: no escape codes in our lines."""
    event = event_dict.get("event")
    if isinstance(event, str) and "\x1b[" in event:
        event_dict["event"] = _ANSI.sub("", event)
    return event_dict


def _first_keys(logger, name, event_dict):
    """timestamp, level, event and logger first: easier to read, whatever the other keys."""
    head = {key: event_dict.pop(key) for key in ("timestamp", "level", "event", "logger") if key in event_dict}
    return head | event_dict


def _scrubber(secrets: Iterable[str]):
    """A final step that replaces each of the process's secrets in the rendered line by ***."""
    secrets = sorted({s for s in secrets if s and len(s) >= MIN_SCRUBBED_LENGTH}, key=len, reverse=True)

    def scrub(logger, name, line):
        for secret in secrets:
            if secret in line:
                line = line.replace(secret, "***")
        return line

    return scrub


def _renderer(fmt: str, stream) -> list:
    if fmt == "console":
        return [structlog.dev.ConsoleRenderer(colors=bool(getattr(stream, "isatty", lambda: False)()),
                                              exception_formatter=structlog.dev.plain_traceback)]
    return [structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False)),
            _first_keys, structlog.processors.JSONRenderer(ensure_ascii=False)]


def configure_logging(fmt: str | None = None, *, secrets: Iterable[str] = (), level: int = logging.INFO) -> None:
    """Every log line of this process as `fmt` ("json" or "console") on stderr; call once, early."""
    fmt = fmt or DEFAULT_FORMAT
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _plain,
    ]
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.PositionalArgumentsFormatter(),
                    structlog.processors.StackInfoRenderer(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = _StderrHandler()
    handler.addFilter(_quiet_rq)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_renderer(fmt, sys.stderr),
                    _scrubber(secrets)],
    ))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_teachery", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name, quiet in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(quiet)
    logging.captureWarnings(True)


class GunicornLogger(glogging.Logger):
    """gunicorn's error and access logs as our lines (gunicorn's `logger_class`).

    The access log leaves out what other lines already say: a webhook the receiver stored (it logs
    "events received" with the event ids) and health probes that answered 2xx.
    """

    QUIET_PATHS = ("/healthz", "/readyz", "/metrics")

    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for old in list(log.handlers):
                log.removeHandler(old)
            log.propagate = True

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        path = environ.get("PATH_INFO") or "-"
        status = getattr(resp, "status_code", None) or int(str(resp.status).split(None, 1)[0])
        if status < 300 and (path in self.QUIET_PATHS or path == "/webhooks/stripe"):
            return
        request_id = next((v for k, v in resp.headers if k.lower() == "x-request-id"), None)
        structlog.get_logger("gunicorn.access").info(
            "request", method=environ.get("REQUEST_METHOD"), path=path, status=status,
            duration_ms=round(request_time.total_seconds() * 1000, 1), bytes=getattr(resp, "sent", None),
            remote_addr=environ.get("REMOTE_ADDR"), request_id=request_id)
