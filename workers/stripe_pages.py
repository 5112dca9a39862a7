"""A Stripe list endpoint page by page, the next page fetched in a background thread while the caller
works on the current one (a run's wall time then approaches pages ÷ rate limit), never more than two
pages held."""
from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from workers.stripe_api import StripeApi

PAGE_SIZE = 100


def pages(api: StripeApi, path: str, *, account: str | None = None, after: str | None = None,
          **params) -> Iterator[tuple[list[dict], bool]]:
    """(objects, has_more) of each page after the object `after` (None: from the first), newest first."""

    def fetch(cursor: str | None) -> dict:
        return api.request("get", path, account=account, limit=PAGE_SIZE, **params,
                           **({"starting_after": cursor} if cursor else {}))

    with ThreadPoolExecutor(1, thread_name_prefix="stripe-next-page") as ahead:
        pending = ahead.submit(fetch, after)
        while True:
            page = pending.result()
            items = [item for item in page.get("data") or []
                     if isinstance(item, dict) and isinstance(item.get("id"), str)]
            more = bool(page.get("has_more")) and bool(items)
            if more:
                pending = ahead.submit(fetch, items[-1]["id"])
            yield items, more
            if not more:
                return
