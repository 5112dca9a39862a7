"""Stripe's GETs without stripe-python's requestor: the parameters encoded as stripe-python encodes them,
and an error answer classified as stripe-python classifies it."""
from __future__ import annotations

import pytest
import stripe
from stripe._encode import _api_encode

from workers.stripe_reads import encode, error_of

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("params", [
    {"limit": 100, "starting_after": "cus_1"},
    {"created": {"gte": 1700000000}, "status": "all", "customer": "cus_9"},
    {"expand": ["refunds", "data.payment_intent"], "include": True, "skip": False, "none": None},
    {"a": {"b": {"c": 1}, "d": [1, 2]}},
])
def test_parameters_are_encoded_as_stripe_python_encodes_them(params):
    assert list(encode(params)) == [(k, str(v).lower() if isinstance(v, bool) else str(v))
                                    for k, v in _api_encode(params)]


def _error(status: int, code: str | None = None, headers: dict | None = None) -> stripe.StripeError:
    data = {"error": {"type": "invalid_request_error", "message": f"answered {status}", "code": code}}
    return error_of(status, b"{}", data, headers or {})


def test_error_answers_become_stripe_pythons_errors():
    limited = _error(429, "rate_limit", {"Retry-After": "2"})
    assert isinstance(limited, stripe.RateLimitError) and limited.headers == {"Retry-After": "2"}
    assert limited.code == "rate_limit" and limited.user_message == "answered 429"
    missing = _error(404, "resource_missing")
    assert isinstance(missing, stripe.InvalidRequestError) and missing.http_status == 404
    assert isinstance(_error(400), stripe.InvalidRequestError)
    assert isinstance(_error(401), stripe.AuthenticationError)
    assert isinstance(_error(403), stripe.PermissionError)
    assert isinstance(_error(500), stripe.APIError) and isinstance(_error(503), stripe.APIError)
