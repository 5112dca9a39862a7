"""Our calls to Stripe's API, with the connected account's header, as plain dicts.

Stripe errors become one of three decisions here, in one place: NotFound (the object does not
exist), StripeUnavailable (try again later: network, 5xx, rate limit, no key) and
StripeRejected (Stripe refused the request as made: a 4xx other than 404/429).

Every call first takes a slot of its account's rate (workers/rate_limit.py, shared by every process)
and waits for it. A 429 (the rate limit, or a `lock_timeout` on an object) is waited out and the call
tried again, up to MAX_RATE_LIMIT_WAIT seconds of waiting in all; then StripeUnavailable.
"""
from __future__ import annotations

import random
import time

import stripe

from domain.db import redact_url
from workers import telemetry
from workers.rate_limit import RateLimiter
from workers.stripe_reads import StripeReader

MAX_RATE_LIMIT_WAIT = 60.0  # seconds one call may spend waiting for the rate limit before giving up
FIRST_BACKOFF = 0.5  # seconds after a 429 that says no Retry-After, doubled after each one
MAX_BACKOFF = 8.0


class StripeUnavailable(Exception):
    """Stripe could not be asked now (no key, network, 429, 5xx); retrying may help."""


class NotFound(Exception):
    """Stripe says the object does not exist."""


class StripeRejected(Exception):
    """Stripe refused the request (a 4xx other than 404 and 429)."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.code = status, code


ERROR_KINDS = {NotFound: "not_found", StripeRejected: "rejected", StripeUnavailable: "unavailable"}

PATHS = {
    "customer": "/v1/customers/{id}",
    "charge": "/v1/charges/{id}",
    "subscription": "/v1/subscriptions/{id}",
    "refund": "/v1/refunds/{id}",
    "payment_intent": "/v1/payment_intents/{id}",
    "invoice": "/v1/invoices/{id}",
    "checkout.session": "/v1/checkout/sessions/{id}",
    "price": "/v1/prices/{id}",
}


_DefaultHttpClient = type(stripe.new_default_http_client())


class _HttpClient(_DefaultHttpClient):
    """stripe-python's own HTTP client, minus its retry of a 429: its `_should_retry` retries a 429 that
    says `Stripe-Should-Retry: true` (lock timeouts) up to max_network_retries times, at its own pace and
    past the shared limiter; StripeApi.request waits those out itself, so the two never multiply."""

    def _should_retry(self, response, api_connection_error, num_retries, max_network_retries):
        if response is not None and response[1] == 429:
            return False
        return super()._should_retry(response, api_connection_error, num_retries, max_network_retries)


class StripeApi:
    """A thin client over stripe-python's StripeClient that returns dicts.

    limiter: the shared per-account rate (built by the composition root); without one, calls are not
    throttled, and a 429 is still waited out and retried."""

    def __init__(self, api_key: str | None, api_base: str, *, max_network_retries: int = 1,
                 limiter: RateLimiter | None = None, max_rate_limit_wait: float = MAX_RATE_LIMIT_WAIT):
        self.api_key = api_key
        self.api_base = api_base
        self._client = None
        self._reader: StripeReader | None = None
        self._retries = max_network_retries
        self.limiter = limiter
        self.max_rate_limit_wait = max_rate_limit_wait

    def __repr__(self) -> str:
        return f"StripeApi(api_base={redact_url(self.api_base)!r}, api_key={'***' if self.api_key else None!r})"

    def close(self) -> None:
        """Close the limiter's Redis connections (the HTTP client holds nothing worth closing)."""
        if self.limiter is not None:
            self.limiter.close()

    @property
    def configured(self) -> bool:
        return bool(self.api_key)

    def _stripe(self) -> stripe.StripeClient:
        if not self.api_key:
            raise StripeUnavailable("STRIPE_API_KEY is not set: cannot call the Stripe API")
        if self._client is None:
            self._reader = StripeReader(self.api_key, self.api_base, retries=self._retries)
            self._client = stripe.StripeClient(
                self.api_key,
                base_addresses={"api": self.api_base},
                max_network_retries=self._retries,
                http_client=_HttpClient(),
            )
        return self._client

    def request(self, method: str, path: str, *, account: str | None = None,
                idempotency_key: str | None = None, **params) -> dict:
        """One API call, in its account's rate, with 429s waited out; the answer as a dict."""
        if account:
            params["stripe_account"] = account
        if idempotency_key:
            params["idempotency_key"] = idempotency_key
        client = self._stripe()  # no key: StripeUnavailable before any slot is taken
        waited, pause, limited = 0.0, 0.0, 0  # pause: the last 429's wait, still to be waited out
        last: stripe.RateLimitError | None = None
        while True:
            most = self.max_rate_limit_wait - waited
            wait = self._wait_for_slot(account, most, pause)
            if wait is None:
                raise StripeUnavailable(f"Stripe rate limit: no slot within {self.max_rate_limit_wait:g} s "
                                        f"(waited {waited:.1f} s; 429 answers: {limited})") from last
            if wait > 0:
                time.sleep(wait)
                waited += wait
            try:
                return self._send(client, method, path, params)
            except (NotFound, StripeRejected, StripeUnavailable) as exc:
                telemetry.stripe_error(account, ERROR_KINDS[type(exc)])
                if self.api_key and self.api_key in str(exc.__cause__):
                    # stripe-python's error echoes the key: not chained into a traceback (RQ keeps a failed
                    # job's in Redis, shown by its dashboard and `jobs failed`); our message has it masked
                    exc.__cause__, exc.__suppress_context__ = None, True
                raise
            except stripe.RateLimitError as exc:  # counted by the limiter (teachery_stripe_rate_limited)
                limited, last = limited + 1, exc
                pause = pause_after(exc, limited)
                # A lock timeout concerns one object, not the account's rate: only this call waits.
                if self.limiter is not None:
                    self.limiter.block(account, pause, shared=_error_code(exc) != "lock_timeout")

    def _wait_for_slot(self, account: str | None, most: float, pause: float) -> float | None:
        """Seconds to wait before the next try: for a slot of the account's rate, and at least the last
        429's pause. None when that is over `most` seconds."""
        if pause > most:
            return None
        if self.limiter is None:
            return pause
        wait = self.limiter.reserve(account, most=most, pausing=pause)
        return None if wait is None else max(wait, pause)

    def _send(self, client: stripe.StripeClient, method: str, path: str, params: dict) -> dict:
        try:
            if method == "get":
                return self._reader.get(path, params)
            response = client.raw_request(method, path, **params)
        except stripe.RateLimitError:
            raise  # waited out and retried by request()
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                raise NotFound(self._said(exc)) from exc
            raise StripeRejected(self._said(exc), exc.http_status, exc.code) from exc
        except stripe.APIConnectionError as exc:
            raise StripeUnavailable(f"cannot reach the Stripe API at {redact_url(self.api_base)}") from exc
        except stripe.APIError as exc:
            raise StripeUnavailable(f"Stripe API error ({exc.http_status}): {self._said(exc)}") from exc
        except stripe.AuthenticationError as exc:
            raise StripeUnavailable(f"Stripe rejected the API key: {self._said(exc)}") from exc
        except stripe.PermissionError as exc:
            raise StripeRejected(f"Stripe refused: {self._said(exc)}", exc.http_status, exc.code) from exc
        except stripe.StripeError as exc:
            status = getattr(exc, "http_status", None)
            if status == 404:
                raise NotFound(self._said(exc, whole=True)) from exc
            if status and 400 <= status < 500 and status != 429:
                raise StripeRejected(self._said(exc), status, getattr(exc, "code", None)) from exc
            raise StripeUnavailable(f"Stripe API error: {self._said(exc, whole=True)}") from exc
        # raw_request answers a StripeResponse, whose body stripe-python has parsed already (an answer that
        # is not JSON raised APIError above): its `data`, never the body parsed a second time. Handlers
        # work on plain dicts (a StripeObject is no dict; `data` is dicts and lists).
        data = getattr(response, "data", None)
        if not isinstance(data, dict):
            raise StripeUnavailable("Stripe answered with something that is not a JSON object")
        return data

    def _said(self, exc: stripe.StripeError, *, whole: bool = False) -> str:
        """What Stripe's error says (its user message, or `whole`: the error as text), our API key masked: an
        answer that echoes the key (a proxy's, a mock's, a key Stripe could not parse) would put it in an
        admin answer, the ledger's last_error and the admin actions' record."""
        said = str(exc) if whole else exc.user_message or str(exc)
        return said.replace(self.api_key, "***") if self.api_key else said

    def retrieve(self, kind: str, object_id: str, *, account: str | None = None, **params) -> dict:
        """GET one object by id (kind is the Stripe `object` name)."""
        return self.request("get", PATHS[kind].format(id=object_id), account=account, **params)


def _error_code(exc: stripe.StripeError) -> str | None:
    """The error's `code` (stripe-python builds a RateLimitError without it: read it from the body)."""
    body = exc.json_body if isinstance(exc.json_body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    return exc.code or error.get("code")


def pause_after(exc: stripe.RateLimitError, attempt: int) -> float:
    """How long to wait after a 429: its Retry-After when it says one, else exponential backoff from
    FIRST_BACKOFF with jitter (half to all of it)."""
    headers = {str(k).lower(): v for k, v in (exc.headers or {}).items()}
    try:
        retry_after = float(headers.get("retry-after", ""))
    except ValueError:  # absent, or an HTTP date (Stripe sends seconds)
        retry_after = None
    if retry_after is not None and retry_after >= 0:
        return min(retry_after, MAX_RATE_LIMIT_WAIT)
    backoff = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (attempt - 1))
    return backoff * random.uniform(0.5, 1.0)
