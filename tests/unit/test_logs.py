"""Log lines and reprs: JSON or console lines without local variables or secrets, RQ's chatter
left out, secrets masked in every repr and message that could print them."""
from __future__ import annotations

import json
import logging

import pytest
import structlog

from domain.db import redact, redact_url
from domain.settings import ConfigError, Settings
from teachery_sync.bootstrap import build
from teachery_sync.logs import configure_logging
from workers.stripe_api import StripeApi

SECRETS = {"webhook": "whsec_unit5ecret0001", "key": "sk_test_unitkey0002", "token": "unit-admin-token-0003",
           "link": "unit-link-secret-0004", "pg": "unitpgpass0005", "redis": "unitredispass0006"}
ENV = {"STRIPE_WEBHOOK_SECRET": f"whsec_other0000x,{SECRETS['webhook']}", "STRIPE_API_KEY": SECRETS["key"],
       "ADMIN_TOKEN": SECRETS["token"], "TEACHERY_LINK_SECRET": SECRETS["link"],
       "DATABASE_URL": f"postgresql://bob:{SECRETS['pg']}@127.0.0.1:5432/x",
       "REDIS_URL": f"redis://:{SECRETS['redis']}@127.0.0.1:6379/0"}


@pytest.fixture
def logging_as():
    """configure_logging for one test; the process's logging as it was afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield configure_logging
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def leaked(text: str) -> list[str]:
    return [name for name, secret in SECRETS.items() if secret in text]


def test_reprs_never_show_a_secret():
    settings = Settings.from_env(ENV)
    services = build(settings)
    try:
        for shown in (repr(settings), str(settings), repr(services), repr(services.stripe)):
            assert not leaked(shown), shown
        assert "webhook_secrets=('***', '***')" in repr(settings) and "bob:" not in repr(settings)
        assert "redis://:***@127.0.0.1:6379/0" in repr(settings)
        assert repr(StripeApi(None, "https://api.stripe.com")) == \
            "StripeApi(api_base='https://api.stripe.com', api_key=None)"
        assert repr(StripeApi(SECRETS["key"], f"http://mock:{SECRETS['pg']}@127.0.0.1:12111")) == \
            "StripeApi(api_base='http://mock:***@127.0.0.1:12111', api_key='***')"
    finally:
        services.close()


@pytest.mark.parametrize("url, shown", [
    ("redis://:pw0001@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
    ("rediss://user:p@w0001@cache.example:6380/2", "rediss://user:***@cache.example:6380/2"),
    ("unix:///run/redis.sock?db=1&password=pw0001", "unix:///run/redis.sock?db=1&password=***"),
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ("redis://[::1", "<unparseable URL>"),
    # a password with an unescaped / ? or #: urlsplit reads it as path, query or fragment, and it was shown whole
    ("redis://:pw0001/x+y=@cache.example:6379/0", "redis://:***@cache.example:6379/0"),
    ("redis://u:pw0001?x@cache.example/0", "redis://u:***@cache.example/0"),
    ("redis://u:pw0001#x@cache.example/0", "redis://u:***@cache.example/0"),
])
def test_redact_url(url, shown):
    assert redact_url(url) == shown


@pytest.mark.parametrize("dsn", ["postgresql://bob:pw0001/x@db.example/teachery", "postgresql://bob:pw0001#x@db/t",
                                 "postgresql://bob:pw0001@db/t"])
def test_redact_dsn_hides_a_password_libpq_reads_as_a_port_or_path(dsn):
    """libpq reads `bob:pw0001/x@db…` as host bob, port pw0001, database x@db…: all three were printed."""
    shown = redact(dsn)
    assert "pw0001" not in shown and "password=***" in shown, shown


def test_the_log_scrubber_knows_a_password_written_with_a_slash():
    """(A Redis URL like it is refused at start, its password hidden: see test_redact_url.)"""
    settings = Settings.from_env({**ENV, "DATABASE_URL": "postgresql://bob:pgpass0007/x@127.0.0.1/db"})
    assert "pgpass0007/x" in settings.secret_values()


@pytest.mark.parametrize("env, message", [
    ({"REDIS_URL": "http://x"}, "REDIS_URL must start with redis://, rediss:// or unix://, not http://x"),
    ({"REDIS_URL": "http://u:pw0001@x"}, "REDIS_URL must start with redis://, rediss:// or unix://, not http://u:***@x"),
    ({"REDIS_URL": "redis://:pw0001@h:port/0"}, "REDIS_URL is not a URL: redis://:***@h:port/0"),
    ({"DATABASE_URL": "bob:pw0001@127.0.0.1/db"}, "DATABASE_URL is neither a postgresql:// URL nor a key=value DSN"),
    ({"LOG_FORMAT": "xml"}, "LOG_FORMAT must be json or console, got 'xml'"),
])
def test_malformed_urls_are_refused_without_their_password(env, message):
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(env)
    assert str(refused.value).startswith(message) and "pw0001" not in str(refused.value)


def _fail_with_secrets_in_locals():
    settings = Settings.from_env(ENV)  # noqa: F841 -- a local a traceback with locals would print
    api_key = SECRETS["key"]  # noqa: F841
    raise RuntimeError("boom")


def test_json_lines_carry_context_and_tracebacks_without_locals(logging_as, capsys):
    logging_as("json", secrets=Settings.from_env(ENV).secret_values())
    log = structlog.get_logger("tests")
    with structlog.contextvars.bound_contextvars(request_id="req-1"):
        try:
            _fail_with_secrets_in_locals()
        except RuntimeError:
            log.exception("unhandled error")
        logging.getLogger("gunicorn.error").warning("stdlib %s", "too")
        log.info("a message that quotes a secret by mistake", detail=f"key={SECRETS['key']}")

    failed, stdlib, careless = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert list(failed)[:4] == ["timestamp", "level", "event", "logger"]
    assert failed["timestamp"].endswith("Z") and failed["request_id"] == "req-1" and failed["level"] == "error"
    [exc] = failed["exception"]
    assert exc["exc_type"] == "RuntimeError" and all("locals" not in frame for frame in exc["frames"])
    assert (stdlib["event"], stdlib["logger"], stdlib["request_id"]) == ("stdlib too", "gunicorn.error", "req-1")
    assert careless["detail"] == "key=***"
    assert not leaked(json.dumps([failed, stdlib, careless]))


def test_console_lines_show_tracebacks_without_locals(logging_as, capsys):
    logging_as("console")
    try:
        _fail_with_secrets_in_locals()
    except RuntimeError:
        structlog.get_logger("tests").exception("unhandled error")

    err = capsys.readouterr().err
    assert "unhandled error" in err and "RuntimeError: boom" in err and not leaked(err)
    assert err.split()[0].endswith("Z")  # the same ISO 8601 UTC timestamp as the JSON lines


def test_rq_says_only_what_our_lines_do_not(logging_as, capsys):
    logging_as("json")
    rq_log = logging.getLogger("rq.worker")
    level = rq_log.level
    rq_log.setLevel(logging.INFO)  # as `worker` runs it: work(logging_level="INFO")
    rq_log.info("Worker %s: started with PID %d, version %s", "w1", 1, "3.0.0")
    rq_log.info("Worker %s: cleaning registries for queue: %s", "w1", "teachery-events")
    rq_log.info("Worker %s: %s: %s (%s)", "w1", "teachery-events", "workers.jobs.process_event('evt_1')", "event-1")
    rq_log.info("Worker %s: %s: %s (%s)", "w1", "teachery-events", "\x1b[34mJob OK\x1b[39;49;00m", "event-1")
    rq_log.info("Worker %s: job %s result is kept for %s seconds", "w1", "event-1", 500)
    rq_log.warning("Worker %s: cold shut down", "w1")
    rq_log.setLevel(level)

    events = [json.loads(line)["event"] for line in capsys.readouterr().err.splitlines()]
    assert events == ["Worker w1: started with PID 1, version 3.0.0", "Worker w1: cold shut down"]
