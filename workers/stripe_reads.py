"""Stripe's GETs (list pages, single objects) straight over urllib3, the answer parsed by orjson.

A reconciliation reads a thousand list pages of 100 objects for every 100,000 objects, and its process's
CPU, not Stripe's rate, bounded it: stripe-python spent about 3 ms of CPU a request around the HTTP call
(its request logging, requests' session and proxy lookup) and parsed every answer into OrderedDicts (two
to three times the json module's plain parse, which orjson does in a third of that). Writes still go
through stripe-python (form encoding, idempotency keys). The errors are stripe-python's own classes, built
from the answer as it builds them, so that StripeApi turns them into its three decisions in one place.
"""
from __future__ import annotations

import random
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import orjson
import stripe
import urllib3

TIMEOUT = urllib3.Timeout(connect=30, read=80)  # stripe-python's own: 80 s a request
USER_AGENT = f"teachery-sync (stripe-python/{stripe.VERSION})"
RETRY_DELAY = 0.5  # seconds before the first retry, doubled (stripe-python's own)


class StripeReader:
    """GET requests with the API key, the account's header and stripe-python's pinned API version."""

    def __init__(self, api_key: str, api_base: str, *, retries: int = 1):
        self._base = api_base.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}", "Stripe-Version": stripe.api_version,
                         "User-Agent": USER_AGENT, "Accept": "application/json"}
        self._retries = retries
        # a connection per thread that reads at once (a run: a reader and a checker per lane, four lanes)
        self._http = urllib3.PoolManager(maxsize=16, timeout=TIMEOUT, retries=False)

    def __repr__(self) -> str:
        return "StripeReader(api_key='***')"

    def get(self, path: str, params: dict) -> dict:
        """The answer as a dict; a stripe.StripeError subclass for an error answer or no answer. Tried
        again (`retries` times) where stripe-python would: no answer, a 409 or a 5xx, unless the answer says
        `Stripe-Should-Retry: false` (a 429 is StripeApi's to wait out)."""
        params = dict(params)
        headers = dict(self._headers)
        if account := params.pop("stripe_account", None):
            headers["Stripe-Account"] = account
        params.pop("idempotency_key", None)  # a GET changes nothing: nothing to keep once
        query = urlencode(list(encode(params)))
        url = f"{self._base}{path}" + (f"?{query}" if query else "")
        for attempt in range(self._retries + 1):
            last = attempt == self._retries
            try:
                response = self._http.request("GET", url, headers=headers, redirect=False)
            except urllib3.exceptions.HTTPError as exc:
                if last:
                    raise stripe.APIConnectionError(f"cannot reach the Stripe API: {type(exc).__name__}") from None
            else:
                if last or not _worth_again(response):
                    return _answer(response)
            time.sleep(RETRY_DELAY * 2 ** attempt * random.uniform(0.5, 1.0))
        raise AssertionError("unreachable")


def _worth_again(response: urllib3.BaseHTTPResponse) -> bool:
    said = response.headers.get("Stripe-Should-Retry")
    if said in ("true", "false"):
        return said == "true" and response.status != 429
    return response.status == 409 or response.status >= 500


def _answer(response: urllib3.BaseHTTPResponse) -> dict:
    body = response.data
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise stripe.APIError(f"Stripe answered {response.status} with something that is not JSON",
                              http_status=response.status) from None
    if response.status == 200 and isinstance(data, dict):
        return data
    raise error_of(response.status, body, data, dict(response.headers))


def error_of(status: int, body: bytes, data, headers: dict) -> stripe.StripeError:
    """The stripe-python error an error answer stands for (as its own requestor classifies it)."""
    error = data.get("error") if isinstance(data, dict) and isinstance(data.get("error"), dict) else {}
    message = error.get("message") or f"Stripe answered {status}"
    code = error.get("code")
    common = {"http_body": body.decode("utf-8", "replace"), "http_status": status, "json_body": data,
              "headers": headers, "code": code}
    if status == 429 or (status == 400 and code == "rate_limit"):
        return stripe.RateLimitError(message, **common)
    if status in (400, 404):
        return stripe.InvalidRequestError(message, error.get("param"), **common)
    if status == 401:
        return stripe.AuthenticationError(message, **common)
    if status == 403:
        return stripe.PermissionError(message, **common)
    return stripe.APIError(message, **common)


def encode(params: dict, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Stripe's form encoding of nested parameters: a[b]=c for dicts, a[0]=c for lists, true/false."""
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if value is None:
            continue
        if isinstance(value, dict):
            yield from encode(value, name)
        elif isinstance(value, (list, tuple)):
            yield from encode(dict(enumerate(value)), name)
        elif isinstance(value, bool):
            yield name, "true" if value else "false"
        else:
            yield name, str(value)
