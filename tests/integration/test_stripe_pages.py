"""workers/stripe_pages.py against the fake Stripe over HTTP: pages in order, read ahead of the caller by
at most AHEAD, no more read once the caller stops, and a failure handed to the caller."""
from __future__ import annotations

import time
from urllib.parse import parse_qs

import pytest

from tests.fake_stripe import StripeError
from tests.stripe_events import T0, customer
from workers.stripe_api import StripeUnavailable
from workers.stripe_pages import AHEAD, PAGE_SIZE, pages

pytestmark = pytest.mark.integration

CUSTOMERS = 12 * PAGE_SIZE


def _listed(stripe_api) -> list[str]:
    return [parse_qs(c["query"]).get("starting_after", [""])[0] for c in stripe_api.calls_to("/v1/customers")
            if c["path"] == "/v1/customers"]


def _settle(stripe_api, seconds: float = 0.5) -> int:
    """The list requests made, once the reader has had time to read all it would."""
    time.sleep(seconds)
    return len(_listed(stripe_api))


def test_pages_in_order_read_ahead_at_most_ahead_and_never_after_the_caller_stops(services, stripe_api):
    stripe_api.put(*(customer(f"cus_Pg{i:05d}", email=f"p{i}@example.com", name=f"P {i}", created=T0 + i)
                     for i in range(CUSTOMERS)))
    seen: list[str] = []
    listing = pages(services.stripe, "/v1/customers")
    objects, more = next(listing)
    seen += [o["id"] for o in objects]
    assert more and len(objects) == PAGE_SIZE
    # the caller holds the first page: the reader queues AHEAD pages, reads one more and waits to hand it over
    assert _settle(stripe_api) == 1 + AHEAD + 1
    rest = list(listing)
    seen += [o["id"] for objects, _ in rest for o in objects]
    assert [more for _, more in rest] == [True] * 10 + [False]
    assert seen == [f"cus_Pg{i:05d}" for i in reversed(range(CUSTOMERS))]  # newest first, each once
    assert len(_listed(stripe_api)) == 12 and len(set(_listed(stripe_api))) == 12

    stripe_api.calls.clear()
    listing = pages(services.stripe, "/v1/customers")
    next(listing)
    listing.close()  # the caller stops after a page: nothing more is asked
    assert _settle(stripe_api) <= 1 + AHEAD + 1
    assert _settle(stripe_api) == _settle(stripe_api, 0.3)


def test_a_failure_of_a_page_read_ahead_reaches_the_caller_after_the_pages_before_it(services, stripe_api):
    stripe_api.put(*(customer(f"cus_Pf{i:05d}", email=None, name=None, created=T0 + i) for i in range(3 * PAGE_SIZE)))
    held = stripe_api.hold("/v1/customers", after=1)  # the second page's request waits
    listing = pages(services.stripe, "/v1/customers")
    objects, more = next(listing)
    assert more and len(objects) == PAGE_SIZE
    assert held.asked.wait(10)
    stripe_api.fail_next.append(("GET", "/v1/customers", StripeError(503, "api_error", "down for a moment")))
    held.release()
    with pytest.raises(StripeUnavailable):
        next(listing)
