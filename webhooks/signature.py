"""Stripe's webhook signature scheme, checked against the raw bytes with every configured secret."""
from __future__ import annotations

import hashlib
import hmac
import time

import stripe


class BadSignature(Exception):
    """The Stripe-Signature header does not prove the body came from Stripe (or it is too old)."""


def verify(payload: bytes, header: str | None, secrets: tuple[str, ...], tolerance: int) -> None:
    """Raise BadSignature unless one of the secrets signed this payload within the tolerance."""
    if not header:
        raise BadSignature("missing Stripe-Signature header")
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        raise BadSignature("body is not UTF-8") from None
    last = "no signature matched"
    for secret in secrets:
        try:
            # Several v1 signatures may be present (Stripe signs with old and new secret while
            # rolling); verify_header accepts any of them and checks the timestamp tolerance.
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance)
            return
        except stripe.SignatureVerificationError as exc:
            last = "timestamp outside the tolerance" if "Timestamp" in str(exc) else "no signature matched the payload"
        except (ValueError, TypeError):
            last = "malformed Stripe-Signature header"
    raise BadSignature(last)


def signature_header(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """Stripe-Signature as Stripe makes it: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<payload>">."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"
