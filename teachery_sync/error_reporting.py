"""Errors to Sentry when SENTRY_DSN is set (sentry-sdk with its Flask and RQ integrations), secrets scrubbed.

Without SENTRY_DSN nothing is imported and nothing is sent. With it, every event goes through `scrub`
before it leaves the process: each secret of the settings (Settings.secret_values(): webhook secrets,
the API key, admin tokens, passwords in the URLs, the DSN's key) is replaced wherever it appears, the
Authorization, Stripe-Signature, Cookie and CSRF headers and the cookies are dropped, and the body of a
webhook (a customer's data, signed by Stripe) is never sent. Stack frames' local variables are not sent
(include_local_variables=False): they hold Stripe objects and webhook bodies that no scrubber can
recognise as personal data.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

from domain.settings import Settings

FILTERED = "[Filtered]"
SECRET_HEADERS = frozenset({"authorization", "stripe-signature", "cookie", "set-cookie", "x-csrftoken",
                            "x-csrf-token", "proxy-authorization"})
WEBHOOK_PATH = "/webhooks/stripe"


def start(settings: Settings) -> bool:
    """Initialise sentry-sdk in this process when SENTRY_DSN is set; False (nothing imported) when not."""
    if not settings.sentry_dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration
    from sentry_sdk.integrations.rq import RqIntegration

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        integrations=[FlaskIntegration(), RqIntegration()],
        send_default_pii=False,  # no user IPs, no cookies, no request bodies beyond what scrub keeps
        include_local_variables=False,
        max_request_body_size="small",
        before_send=scrubber(settings.secret_values()),
        before_breadcrumb=breadcrumb_scrubber(settings.secret_values()),
    )
    return True


def scrubber(secrets: Iterable[str]) -> Callable[[dict, dict], dict]:
    """sentry-sdk's before_send: the event with every secret removed (see the module's docstring)."""
    known = _longest_first(secrets)

    def before_send(event: dict, hint: dict) -> dict:
        return scrub(event, known)
    return before_send


def breadcrumb_scrubber(secrets: Iterable[str]) -> Callable[[dict, dict], dict]:
    known = _longest_first(secrets)

    def before_breadcrumb(crumb: dict, hint: dict) -> dict:
        return _replace_secrets(crumb, known)
    return before_breadcrumb


def scrub(event: dict, secrets: Iterable[str]) -> dict:
    """The event without secret headers, cookies or a webhook's body, and with every secret's text replaced."""
    request = event.get("request")
    if isinstance(request, dict):
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {k: (FILTERED if str(k).lower() in SECRET_HEADERS else v) for k, v in headers.items()}
        elif isinstance(headers, list):  # [[name, value], …]
            request["headers"] = [[k, FILTERED if str(k).lower() in SECRET_HEADERS else v] for k, v in headers]
        if "cookies" in request:
            request["cookies"] = FILTERED
        if WEBHOOK_PATH in str(request.get("url", "")) and "data" in request:
            request["data"] = FILTERED
    return _replace_secrets(event, _longest_first(secrets))


def _longest_first(secrets: Iterable[str]) -> tuple[str, ...]:
    # a secret that contains another (a DSN and its key) is replaced whole first
    return tuple(sorted({s for s in secrets if s}, key=len, reverse=True))


def _replace_secrets(value, secrets: tuple[str, ...]):
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, FILTERED)
        return value
    if isinstance(value, bytes):
        return _replace_secrets(value.decode("utf-8", "replace"), secrets)
    if isinstance(value, dict):
        return {_replace_secrets(k, secrets): _replace_secrets(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_replace_secrets(v, secrets) for v in value]
    return value
