"""Settings, read once from the environment into a frozen dataclass."""
from __future__ import annotations

import contextlib
import math
import os
import re
import tempfile
from dataclasses import dataclass, field, fields, replace
from datetime import UTC

STRIPE_API_BASE = "https://api.stripe.com"
LOG_FORMATS = ("json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")
SWITCHES = {"on": True, "off": False, "1": True, "0": False, "true": True, "false": False}
SECRET_FIELDS = ("webhook_secrets", "stripe_api_key", "admin_token", "link_secret", "console_secret_key", "sentry_dsn")
# A session's cookie expires this long after each request: beyond ten years (1e10 minutes was taken) its expiry
# date could overflow, and every sign-in answered 500
MAX_IDLE_MINUTES = 10 * 365 * 24 * 60
ADMIN_TOKEN_NAME = "admin"  # ADMIN_TOKEN alone is one unscoped token of this name
PLATFORM_SCOPE = "platform"  # ADMIN_TOKENS' word for the platform's own account


def default_metrics_dir() -> str:
    """PROMETHEUS_MULTIPROC_DIR's default: one directory per machine (and user) under the system's temp dir."""
    return os.path.join(tempfile.gettempdir(), f"teachery-sync-metrics-{os.getuid()}")


class ConfigError(Exception):
    """A required setting is missing or malformed."""


@dataclass(frozen=True, repr=False)
class Settings:
    database_url: str = "postgresql:///teachery_sync"
    redis_url: str = "redis://127.0.0.1:6379/0"
    webhook_secrets: tuple[str, ...] = ()
    stripe_api_key: str | None = None
    stripe_api_base: str = STRIPE_API_BASE
    admin_token: str | None = None
    # ADMIN_TOKENS (and ADMIN_TOKEN): (name, token, scope); scope '' is the platform, acct_… a connected
    # account, None every account
    admin_tokens: tuple[tuple[str, str, str | None], ...] = ()
    webhook_tolerance_seconds: int = 300
    teachery_base_url: str = "http://localhost:8000"
    link_secret: str | None = None  # signs password-reset links; derived from the webhook secret when unset
    max_body_bytes: int = 1024 * 1024
    stripe_network_retries: int = 2
    log_format: str | None = None  # json or console; None: the command's default (json; console under `dev`)
    log_level: str = "info"
    access_log: bool = True  # gunicorn's request lines (never for a stored webhook or a 2xx health probe)
    stripe_max_requests_per_second: float = 25.0  # per Stripe account, every process together (test mode's limit)
    reconcile_schedule: str = "0 3 * * *"  # the clock's nightly run (cron, UTC); "" turns it off
    reconcile_full_schedule: str = "0 4 * * 0"  # the clock's weekly full run (cron, UTC); "" turns it off
    console_idle_minutes: float = 30.0  # a console session ends after this long without a request
    console_secret_key: str | None = None  # signs console session cookies; derived from the tokens when unset
    auth_failure_limit: str = "30/minute"  # failed admin sign-ins/bearer tokens per client before 429s
    # prometheus-client's multiprocess directory: every process's counters, summed on /metrics
    metrics_dir: str = field(default_factory=default_metrics_dir)
    sentry_dsn: str | None = None  # errors go to Sentry, secrets scrubbed (teachery_sync/error_reporting.py)

    @classmethod
    def from_env(cls, environ: dict | None = None) -> Settings:
        env = os.environ if environ is None else environ
        secrets = tuple(s.strip() for s in env.get("STRIPE_WEBHOOK_SECRET", "").split(",") if s.strip())
        tolerance = env.get("WEBHOOK_TOLERANCE_SECONDS", "300")
        if re.fullmatch(r"[0-9]{1,9}", tolerance.strip()) is None:  # -300 refused every webhook: none is that new
            raise ConfigError("WEBHOOK_TOLERANCE_SECONDS must be a whole number of seconds, 0 or more, in digits 0-9, "
                              f"got {tolerance!r}")
        tolerance_seconds = int(tolerance)
        log_format = env.get("LOG_FORMAT") or None
        if log_format is not None and log_format not in LOG_FORMATS:
            raise ConfigError(f"LOG_FORMAT must be json or console, got {log_format!r}")
        log_level = (env.get("LOG_LEVEL") or cls.log_level).lower()
        if log_level not in LOG_LEVELS:
            raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
        access_log = (env.get("ACCESS_LOG") or "on").lower()
        if access_log not in SWITCHES:
            raise ConfigError(f"ACCESS_LOG must be on or off, got {access_log!r}")
        max_rate = _positive_number("STRIPE_MAX_REQUESTS_PER_SECOND", env.get("STRIPE_MAX_REQUESTS_PER_SECOND"),
                                    cls.stripe_max_requests_per_second)
        database_url = env.get("DATABASE_URL") or cls.database_url
        redis_url = env.get("REDIS_URL") or cls.redis_url
        from domain.db import dsn_problem, redis_url_problem

        problem = dsn_problem(database_url) or redis_url_problem(redis_url)
        if problem:
            raise ConfigError(problem)
        return cls(
            database_url=database_url,
            redis_url=redis_url,
            webhook_secrets=secrets,
            stripe_api_key=env.get("STRIPE_API_KEY") or None,
            stripe_api_base=(env.get("STRIPE_API_BASE") or STRIPE_API_BASE).rstrip("/"),
            admin_token=env.get("ADMIN_TOKEN") or None,
            admin_tokens=_admin_tokens(env.get("ADMIN_TOKEN") or None, env.get("ADMIN_TOKENS") or ""),
            webhook_tolerance_seconds=tolerance_seconds,
            teachery_base_url=(env.get("TEACHERY_BASE_URL") or cls.teachery_base_url).rstrip("/"),
            link_secret=env.get("TEACHERY_LINK_SECRET") or None,
            log_format=log_format,
            log_level=log_level,
            access_log=SWITCHES[access_log],
            stripe_max_requests_per_second=max_rate,
            reconcile_schedule=_schedule(env, "RECONCILE_SCHEDULE", cls.reconcile_schedule),
            reconcile_full_schedule=_schedule(env, "RECONCILE_FULL_SCHEDULE", cls.reconcile_full_schedule),
            console_idle_minutes=_positive_number("CONSOLE_IDLE_MINUTES", env.get("CONSOLE_IDLE_MINUTES"),
                                                  cls.console_idle_minutes, unit="minutes", most=MAX_IDLE_MINUTES),
            console_secret_key=env.get("CONSOLE_SECRET_KEY") or None,
            auth_failure_limit=_rate_limit(env, "AUTH_FAILURE_LIMIT", cls.auth_failure_limit),
            metrics_dir=os.path.abspath(env.get("PROMETHEUS_MULTIPROC_DIR") or default_metrics_dir()),
            sentry_dsn=env.get("SENTRY_DSN") or None,
        )

    def __repr__(self) -> str:
        """Every field, with the secrets masked and the URLs' passwords hidden (reprs end up in logs)."""
        from domain.db import redact, redact_url

        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS:
                value = _masked(value)
            elif f.name == "admin_tokens":
                value = tuple((name, _masked(token), scope) for name, token, scope in value)
            elif f.name == "database_url":
                value = redact(value)
            elif f.name == "redis_url":
                value = redact_url(value)
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    def secret_values(self) -> tuple[str, ...]:
        """The secrets themselves (keys, tokens, passwords in the URLs), for a log scrubber."""
        from urllib.parse import parse_qs, urlsplit

        import psycopg
        from psycopg.conninfo import conninfo_to_dict

        from domain.db import loose_password

        found = [*self.webhook_secrets, self.stripe_api_key, self.admin_token, self.link_secret,
                 self.console_secret_key, self.sentry_dsn, *(token for _, token, _ in self.admin_tokens)]
        with contextlib.suppress(psycopg.ProgrammingError):
            found.append(conninfo_to_dict(self.database_url).get("password"))
        with contextlib.suppress(ValueError):
            found.append(urlsplit(self.sentry_dsn or "").username)  # the DSN's key
        try:
            redis_url = urlsplit(self.redis_url)
            found += [redis_url.password, *parse_qs(redis_url.query).get("password", [])]
        except ValueError:
            pass
        found += [loose_password(self.database_url), loose_password(self.redis_url)]  # also one with a / or #
        return tuple(s for s in found if s)

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)

    def require_webhook_secret(self) -> None:
        if not self.webhook_secrets:
            raise ConfigError(
                "STRIPE_WEBHOOK_SECRET is not set: set it to your endpoint's signing secret (whsec_…); "
                "several may be given comma-separated while rotating"
            )


def _positive_number(name: str, raw: str | None, default: float, *, unit: str = "requests per second",
                     most: float = math.inf) -> float:
    """A setting that must be a finite number above zero, and at most `most` (unset or empty: the default)."""
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw) if raw.isascii() else math.nan  # float() would read "٢٥" as 25
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0 or value > most:
        bound = "" if most == math.inf else f" of at most {most:g}"
        raise ConfigError(f"{name} must be a positive number{bound} ({unit}), got {raw!r}")
    return value


_TOKEN_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


def _admin_tokens(single: str | None, listed: str) -> tuple[tuple[str, str, str | None], ...]:
    """ADMIN_TOKENS: comma-separated `name:token` (every account), `name:token:acct_…` or
    `name:token:platform` (that account only); ADMIN_TOKEN adds one unscoped token named `admin`. Errors
    name the entry by its place and name, never by its token."""
    from domain.ids import is_account_id

    # A request's token is read trimmed (a bearer header, the sign-in form): one with a space at an end
    # ("ops: s3cret") could never sign anyone in, and nothing said so.
    spaced = " starts or ends with a space, which no request can send: remove it"
    if single and single != single.strip():
        raise ConfigError(f"ADMIN_TOKEN{spaced}")
    tokens = [(ADMIN_TOKEN_NAME, single, None)] if single else []
    for place, entry in enumerate((e.strip() for e in listed.split(",")), start=1):
        if not entry:
            continue
        parts = entry.split(":")
        name = parts[0].strip()
        if len(parts) not in (2, 3) or not _TOKEN_NAME.fullmatch(name) or not parts[1]:
            raise ConfigError(f"ADMIN_TOKENS entry {place} must be name:token, name:token:acct_… or "
                              "name:token:platform (a name of letters, digits, _ . @ -; a token without , or :)")
        if parts[1] != parts[1].strip():
            raise ConfigError(f"ADMIN_TOKENS entry {place} ({name}): the token{spaced}")
        scope: str | None = None
        if len(parts) == 3:
            if parts[2] == PLATFORM_SCOPE:
                scope = ""
            elif is_account_id(parts[2]):
                scope = parts[2]
            else:
                raise ConfigError(f"ADMIN_TOKENS entry {place} ({name}): the scope must be acct_… or platform")
        tokens.append((name, parts[1], scope))
    names = [name for name, _, _ in tokens]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ConfigError(f"ADMIN_TOKENS: the name(s) {', '.join(twice)} are given twice (ADMIN_TOKEN is named "
                          f"{ADMIN_TOKEN_NAME})")
    if len({token for _, token, _ in tokens}) < len(tokens):
        raise ConfigError("ADMIN_TOKENS: two entries have the same token")
    return tuple(tokens)


def _rate_limit(env, key: str, default: str) -> str:
    """A rate in the limits library's words ("20/minute", "5 per 10 seconds")."""
    from limits import parse

    raw = (env.get(key) or default).strip()
    try:
        parse(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a rate such as 20/minute or 5 per 10 seconds, got {raw!r}") from None
    return raw


def _schedule(env, key: str, default: str) -> str:
    """A cron schedule setting: unset is the default, empty (or blanks) turns it off, else five fields."""
    value = env.get(key)
    if value is None:
        return default
    value = " ".join(value.split())
    if value and (problem := cron_problem(value)):
        raise ConfigError(f"{key} must be a cron expression of five fields (minute hour day month weekday, UTC) "
                          f"such as {default!r}, or empty to turn it off; {value!r} {problem}")
    return value


def cron_problem(expression: str) -> str | None:
    """What is wrong with a five-field cron expression, or None."""
    from datetime import datetime

    from croniter import croniter
    from croniter.croniter import CroniterBadDateError, CroniterError

    if len(expression.split()) != 5:
        return f"has {len(expression.split())} field(s)"
    try:
        croniter(expression, datetime.now(UTC)).get_next(datetime)
    except CroniterBadDateError:  # "0 3 30 2 *" parses, yet February 30 never comes
        return "never comes (no such date)"
    except CroniterError as exc:
        return f"is not valid: {exc}"
    return None


def _masked(value):
    """'***' for each secret that is set; None and () stay as they are."""
    if isinstance(value, tuple):
        return tuple("***" for _ in value)
    return None if value is None else "***"
