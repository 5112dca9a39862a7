"""Our calls to Stripe's API, with the connected account's header, as plain dicts.

Stripe errors become one of three decisions here, in one place: NotFound (the object does not
exist), StripeUnavailable (try again later: network, 5xx, rate limit, no key) and
StripeRejected (Stripe refused the request as made: a 4xx other than 404/429).
"""
from __future__ import annotations

import json
from collections.abc import Iterator

import stripe

from domain.db import redact_url


class StripeUnavailable(Exception):
    """Stripe could not be asked now (no key, network, 429, 5xx); retrying may help."""


class NotFound(Exception):
    """Stripe says the object does not exist."""


class StripeRejected(Exception):
    """Stripe refused the request (a 4xx other than 404 and 429)."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.code = status, code


PATHS = {
    "customer": "/v1/customers/{id}",
    "charge": "/v1/charges/{id}",
    "subscription": "/v1/subscriptions/{id}",
    "refund": "/v1/refunds/{id}",
    "payment_intent": "/v1/payment_intents/{id}",
    "invoice": "/v1/invoices/{id}",
    "checkout.session": "/v1/checkout/sessions/{id}",
}


class StripeApi:
    """A thin client over stripe-python's StripeClient that returns dicts."""

    def __init__(self, api_key: str | None, api_base: str, *, max_network_retries: int = 1):
        self.api_key = api_key
        self.api_base = api_base
        self._client = None
        self._retries = max_network_retries

    def __repr__(self) -> str:
        return f"StripeApi(api_base={redact_url(self.api_base)!r}, api_key={'***' if self.api_key else None!r})"

    @property
    def configured(self) -> bool:
        return bool(self.api_key)

    def _stripe(self) -> stripe.StripeClient:
        if not self.api_key:
            raise StripeUnavailable("STRIPE_API_KEY is not set: cannot call the Stripe API")
        if self._client is None:
            self._client = stripe.StripeClient(
                self.api_key,
                base_addresses={"api": self.api_base},
                max_network_retries=self._retries,
            )
        return self._client

    def request(self, method: str, path: str, *, account: str | None = None,
                idempotency_key: str | None = None, **params) -> dict:
        """One API call; the answer as a dict."""
        options = {}
        if account:
            params["stripe_account"] = account
        if idempotency_key:
            params["idempotency_key"] = idempotency_key
        try:
            response = self._stripe().raw_request(method, path, **params, **options)
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                raise NotFound(exc.user_message or str(exc)) from exc
            raise StripeRejected(exc.user_message or str(exc), exc.http_status, exc.code) from exc
        except stripe.RateLimitError as exc:
            raise StripeUnavailable(f"Stripe rate limit: {exc.user_message or exc}") from exc
        except stripe.APIConnectionError as exc:
            raise StripeUnavailable(f"cannot reach the Stripe API at {redact_url(self.api_base)}") from exc
        except stripe.APIError as exc:
            raise StripeUnavailable(f"Stripe API error ({exc.http_status}): {exc.user_message or exc}") from exc
        except stripe.AuthenticationError as exc:
            raise StripeUnavailable(f"Stripe rejected the API key: {exc.user_message or exc}") from exc
        except stripe.PermissionError as exc:
            raise StripeRejected(f"Stripe refused: {exc.user_message or exc}", exc.http_status, exc.code) from exc
        except stripe.StripeError as exc:
            status = getattr(exc, "http_status", None)
            if status == 404:
                raise NotFound(str(exc)) from exc
            if status and 400 <= status < 500 and status != 429:
                raise StripeRejected(exc.user_message or str(exc), status, getattr(exc, "code", None)) from exc
            raise StripeUnavailable(f"Stripe API error: {exc}") from exc
        # raw_request answers a StripeResponse; handlers work on plain dicts (StripeObject is no dict).
        body = response.body if hasattr(response, "body") else str(response)
        try:
            return json.loads(body)
        except ValueError as exc:
            raise StripeUnavailable("Stripe answered with something that is not JSON") from exc

    def retrieve(self, kind: str, object_id: str, *, account: str | None = None, **params) -> dict:
        """GET one object by id (kind is the Stripe `object` name)."""
        return self.request("get", PATHS[kind].format(id=object_id), account=account, **params)


def paginate(api: StripeApi, path: str, *, account: str | None = None, **params) -> Iterator[dict]:
    """Every object of a Stripe list endpoint, page by page (newest first, as Stripe lists them)."""
    cursor = None
    while True:
        page = api.request("get", path, account=account, limit=100, **params,
                           **({"starting_after": cursor} if cursor else {}))
        items = [item for item in page.get("data") or [] if isinstance(item, dict)]
        yield from items
        if not page.get("has_more") or not items:
            return
        cursor = items[-1]["id"]
