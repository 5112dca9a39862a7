"""Course links for a customer (login, password reset, billing, cancel subscription) and the signed,
expiring password-reset token (valid 24 hours).

A token is `<customer id>.<expiry, Unix seconds>.<signature>`, the signature being HMAC-SHA256 of
`<customer id>.<expiry>` under the link secret, base64url without padding. Teachery verifies it with
the same secret (verify_reset_token) before letting the customer set a new password.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlencode

from domain.settings import Settings

RESET_TOKEN_SECONDS = 24 * 3600


def link_key(settings: Settings) -> bytes:
    """TEACHERY_LINK_SECRET, or else a key derived from the (first) webhook signing secret."""
    if settings.link_secret:
        return settings.link_secret.encode()
    if not settings.webhook_secrets:
        raise ValueError("no secret to sign links with: set TEACHERY_LINK_SECRET or STRIPE_WEBHOOK_SECRET")
    return hmac.new(b"teachery-sync password-reset links", settings.webhook_secrets[0].encode(),
                    hashlib.sha256).digest()


def _signature(key: bytes, payload: str) -> str:
    digest = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def reset_token(key: bytes, customer_id: str, now: int, *, valid_for: int = RESET_TOKEN_SECONDS) -> str:
    """A password-reset token for the customer that expires valid_for seconds after now."""
    payload = f"{customer_id}.{now + valid_for}"
    return f"{payload}.{_signature(key, payload)}"


def verify_reset_token(key: bytes, token: str, now: int) -> str | None:
    """The customer id of a genuine, unexpired token; None otherwise."""
    payload, _, signature = token.rpartition(".")
    customer_id, _, expires = payload.rpartition(".")
    if not customer_id or not expires.isdigit():
        return None
    if not hmac.compare_digest(signature.encode(), _signature(key, payload).encode()):
        return None
    return customer_id if now < int(expires) else None


def login_link(base_url: str, customer_id: str) -> str:
    return f"{base_url}/login?{urlencode({'customer': customer_id})}"


def customer_links(base_url: str, key: bytes, customer_id: str, now: int) -> dict:
    """The four links a customer is given; billing is the login link with `login` replaced by `billing`."""
    login = login_link(base_url, customer_id)
    return {
        "login": login,
        "password_reset": f"{base_url}/password-reset?{urlencode({'token': reset_token(key, customer_id, now)})}",
        "billing": login.replace("/login?", "/billing?", 1),
        "cancel_subscription": login.replace("/login?", "/cancel-subscription?", 1),
    }
