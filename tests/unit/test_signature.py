"""The receiver's signature check gives stripe-python's verdict on every header, body and secrets."""
from __future__ import annotations

import hashlib
import hmac
import time

import pytest
import stripe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webhooks.signature import BadSignature, signature_header, verify

SECRETS = ("whsec_old0000000001", "whsec_new0000000002")
NOW = int(time.time())


def stripe_verdict(payload: bytes, header: str | None, secrets: tuple[str, ...], tolerance: int) -> str | None:
    """What the check said when it called stripe.WebhookSignature.verify_header for each secret."""
    if not header:
        return "missing Stripe-Signature header"
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return "body is not UTF-8"
    last = "no signature matched the payload"
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance)
            return None
        except stripe.SignatureVerificationError as exc:
            last = "timestamp outside the tolerance" if "Timestamp" in str(exc) else "no signature matched the payload"
        except (ValueError, TypeError):
            last = "malformed Stripe-Signature header"
    return last


def our_verdict(payload: bytes, header: str | None, secrets: tuple[str, ...], tolerance: int) -> str | None:
    try:
        verify(payload, header, secrets, tolerance)
    except BadSignature as exc:
        return str(exc)
    return None


def _v1(payload: bytes, secret: str, timestamp: str) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()


@st.composite
def cases(draw):
    payload = draw(st.one_of(st.binary(max_size=40), st.text(max_size=40).map(str.encode),
                             st.just(b'{"id": "evt_1", "object": "event"}')))
    timestamp = draw(st.one_of(st.just(str(NOW)), st.just(str(NOW - 1000)), st.just(f" {NOW}"), st.just(f"+{NOW}"),
                               st.just(f"00{NOW}"), st.integers(-10**6, 10**12).map(str), st.text(max_size=6)))
    part = st.one_of(
        st.just(f"t={timestamp}"),
        st.sampled_from(SECRETS + ("whsec_wrong",)).map(lambda s: f"v1={_v1(payload, s, timestamp)}"),
        st.just(f"v1={_v1(payload, SECRETS[0], str(NOW))}"),
        st.sampled_from(["v1=", "v1", "t", "t=", "v0=abc", "v1=é", "v1=00", "=", "t=1=2", "v1=a=b", ""]),
        st.text(alphabet="tv1=,é0a ", max_size=8),
    )
    header = ",".join(draw(st.lists(part, max_size=5)))
    secrets = tuple(draw(st.lists(st.sampled_from(SECRETS + ("whsec_other",)), min_size=1, max_size=3)))
    tolerance = draw(st.sampled_from([300, 0, 5000]))
    return payload, draw(st.one_of(st.just(header), st.none(), st.just(""))), secrets, tolerance


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(cases())
def test_every_verdict_is_stripe_pythons(case):
    assert our_verdict(*case) == stripe_verdict(*case)


@pytest.mark.parametrize("header, secrets, verdict", [  # headers made when the test runs, not when collected
    (lambda now: signature_header(b"{}", SECRETS[1], now), SECRETS, None),
    (lambda now: f"t={now},v1=00,v1={_v1(b'{}', SECRETS[0], str(now))}", SECRETS[:1], None),  # any v1 will do
    (lambda now: signature_header(b"{}", SECRETS[0], now - 301), SECRETS[:1], "timestamp outside the tolerance"),
    (lambda now: signature_header(b"{}", "whsec_wrong", now), SECRETS, "no signature matched the payload"),
    (lambda now: f"v1={_v1(b'{}', SECRETS[0], str(now))}", SECRETS, "no signature matched the payload"),  # no t
    (lambda now: f"t={now},v1=é", SECRETS, "malformed Stripe-Signature header"),
    (lambda now: None, SECRETS, "missing Stripe-Signature header"),
])
def test_the_usual_cases(header, secrets, verdict):
    made = header(int(time.time()))
    assert our_verdict(b"{}", made, secrets, 300) == verdict == stripe_verdict(b"{}", made, secrets, 300)
