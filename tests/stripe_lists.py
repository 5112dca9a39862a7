"""FakeStripeApi with Stripe's list behaviour, for the backfill and reconciliation tests.

Adds what tests/stripe_events.py's fake leaves out: /v1/events, newest-first pages with `has_more`
and `starting_after` (`page_size` makes small pages), `created[gte]`, and `status=all` for
subscriptions (every status; without it, Stripe leaves canceled ones out). Deleted customers are
retrievable (as their deletion stub) but not listed, as in Stripe.
"""
from __future__ import annotations

import copy
from urllib.parse import parse_qs

import pytest
import responses

from tests.conftest import STRIPE_API_BASE
from tests.stripe_events import FakeStripeApi

CONTROL = ("limit", "starting_after", "ending_before", "created[gte]", "expand[]")


class ListingStripeApi(FakeStripeApi):
    page_size = 100

    def put_event(self, *events: dict, account: str | None = None, strip_account: bool = True) -> None:
        """Make events listable under /v1/events for this account (as the API shows them: by default
        without the top-level `account` a Connect webhook carries)."""
        for event in events:
            copied = copy.deepcopy(event)
            if strip_account:
                copied.pop("account", None)
            self.objects[(account, f"/v1/events/{event['id']}")] = copied

    def _list(self, account, url) -> dict:
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        filters = {k: v for k, v in query.items() if k not in CONTROL}
        if url.path == "/v1/subscriptions":
            if filters.get("status") == "all":
                filters.pop("status")
            elif "status" not in filters:
                filters["status!"] = "canceled"
        since = int(query.get("created[gte]", 0))
        data = [obj for (acct, path), obj in self.objects.items()
                if acct == account and path.rsplit("/", 1)[0] == url.path and not obj.get("deleted")
                and (obj.get("created") or 0) >= since
                and all(_matches(obj, k, v) for k, v in filters.items())]
        data.sort(key=lambda o: (o.get("created") or 0, o["id"]), reverse=True)  # Stripe: newest first
        if "starting_after" in query:
            ids = [o["id"] for o in data]
            data = data[ids.index(query["starting_after"]) + 1:] if query["starting_after"] in ids else []
        size = min(int(query.get("limit", 10)), self.page_size)
        return {"object": "list", "data": data[:size], "has_more": len(data) > size, "url": url.path}


def _matches(obj: dict, key: str, value: str) -> bool:
    if key.endswith("!"):
        return str(obj.get(key[:-1])) != value
    return str(obj.get(key)) == value


@pytest.fixture
def stripe_lists():
    """The Stripe API faked with `responses`, with lists (instead of conftest's stripe_api)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield ListingStripeApi(rsps, STRIPE_API_BASE)
