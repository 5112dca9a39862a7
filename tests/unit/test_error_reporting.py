"""What would go to Sentry: the scrubber on an event dict as sentry-sdk hands it to before_send, and
nothing imported or sent without SENTRY_DSN."""
from __future__ import annotations

import json
import subprocess
import sys

from domain.settings import Settings
from teachery_sync.error_reporting import FILTERED, scrubber

DSN = "https://dsnkey0123456789abcdef@o1.ingest.sentry.example/42"
ENV = {
    "STRIPE_WEBHOOK_SECRET": "whsec_scrub_me_0123456789",
    "STRIPE_API_KEY": "sk_test_scrub_me_0123456789",
    "ADMIN_TOKEN": "admin-token-scrub-me",
    "ADMIN_TOKENS": "ann:ann-token-scrub-me:acct_1ScrubAnn",
    "DATABASE_URL": "postgresql://app:db-password-scrub-me@db.example/teachery",
    "REDIS_URL": "redis://:redis-password-scrub-me@cache.example:6379/0",
    "SENTRY_DSN": DSN,
}
SECRETS = ("whsec_scrub_me_0123456789", "sk_test_scrub_me_0123456789", "admin-token-scrub-me",
           "ann-token-scrub-me", "db-password-scrub-me", "redis-password-scrub-me", "dsnkey0123456789abcdef")


def _event(path: str, body) -> dict:
    """An error event as sentry-sdk's Flask integration builds it (request, exception, breadcrumbs, extra)."""
    return {
        "level": "error",
        "request": {
            "url": f"http://svc.example{path}", "method": "POST", "query_string": "token=admin-token-scrub-me",
            "headers": {"Authorization": "Bearer admin-token-scrub-me", "Stripe-Signature": "t=1,v1=abc",
                        "Cookie": "session=xyz", "X-CSRFToken": "csrf", "Content-Type": "application/json"},
            "cookies": {"session": "xyz"},
            "data": body,
        },
        "exception": {"values": [{"type": "OperationalError", "value":
                                  "connection to postgresql://app:db-password-scrub-me@db.example failed",
                                  "stacktrace": {"frames": [{"function": "receive", "vars": {
                                      "api_key": "sk_test_scrub_me_0123456789"}}]}}]},
        "breadcrumbs": {"values": [{"message": "called Stripe with sk_test_scrub_me_0123456789"}]},
        "extra": {"settings": ["whsec_scrub_me_0123456789", b"ann-token-scrub-me"], "dsn": DSN},
    }


def test_every_secret_header_cookie_and_webhook_body_is_scrubbed():
    settings = Settings.from_env(ENV)
    assert set(SECRETS) <= set(settings.secret_values())
    before_send = scrubber(settings.secret_values())
    body = {"id": "evt_1", "data": {"object": {"email": "customer@example.com"}}}
    sent = before_send(_event("/webhooks/stripe", body), {})

    text = json.dumps(sent)
    for secret in SECRETS + (DSN, "session=xyz", "t=1,v1=abc", "customer@example.com"):
        assert secret not in text, secret
    headers = sent["request"]["headers"]
    assert [headers[h] for h in ("Authorization", "Stripe-Signature", "Cookie", "X-CSRFToken")] == [FILTERED] * 4
    assert headers["Content-Type"] == "application/json"  # what is no secret stays
    assert sent["request"]["cookies"] == FILTERED and sent["request"]["data"] == FILTERED
    assert sent["exception"]["values"][0]["value"] == f"connection to postgresql://app:{FILTERED}@db.example failed"
    assert sent["request"]["method"] == "POST" and sent["level"] == "error"


def test_the_admin_apis_body_stays_but_its_secrets_go():
    before_send = scrubber(Settings.from_env(ENV).secret_values())
    sent = before_send(_event("/admin/api/customers/1", {"name": "Ada", "note": "whsec_scrub_me_0123456789"}), {})
    assert sent["request"]["data"] == {"name": "Ada", "note": FILTERED}


def test_without_a_dsn_nothing_is_imported_or_sent():
    """In a fresh interpreter: the commands' start-up (web's and worker's) loads no sentry_sdk at all."""
    code = (
        "import sys\n"
        "from domain.settings import Settings\n"
        "from teachery_sync import error_reporting, serve, worker_command, cli\n"
        "assert error_reporting.start(Settings.from_env({})) is False\n"
        "print(sorted(m for m in sys.modules if m.startswith('sentry_sdk')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_with_a_dsn_sentry_is_started_with_the_scrubber():
    code = (
        "import sentry_sdk\n"
        "from domain.settings import Settings\n"
        "from teachery_sync import error_reporting\n"
        f"assert error_reporting.start(Settings.from_env({{'SENTRY_DSN': {DSN!r}}})) is True\n"
        "client = sentry_sdk.get_client()\n"
        "names = sorted(client.integrations)\n"
        "print(client.is_active(), 'flask' in names, 'rq' in names, client.options['before_send'] is not None,\n"
        "      client.options['send_default_pii'], client.options['include_local_variables'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True", "True", "True", "False", "False"]
