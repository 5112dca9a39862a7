"""A Stripe list endpoint page by page, the next pages fetched in a background thread while the caller
works on the current one (a run's wall time then approaches pages ÷ rate limit): up to AHEAD pages are
read ahead, so that a page that takes the caller longer (one with fixes) does not leave the account's
rate unused (the reader holds one more page while it waits to hand it over)."""
from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

from workers.stripe_api import StripeApi

PAGE_SIZE = 100
AHEAD = 4  # pages read ahead of the caller at most (each about 100 objects)


def pages(api: StripeApi, path: str, *, account: str | None = None, after: str | None = None,
          **params) -> Iterator[tuple[list[dict], bool]]:
    """(objects, has_more) of each page after the object `after` (None: from the first), newest first."""
    ready: queue.Queue = queue.Queue(AHEAD)
    stop = threading.Event()

    def put(entry: tuple) -> bool:
        while not stop.is_set():
            try:
                ready.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read_ahead() -> None:
        cursor = after
        try:
            while not stop.is_set():
                page = api.request("get", path, account=account, limit=PAGE_SIZE, **params,
                                   **({"starting_after": cursor} if cursor else {}))
                items = [item for item in page.get("data") or []
                         if isinstance(item, dict) and isinstance(item.get("id"), str)]
                more = bool(page.get("has_more")) and bool(items)
                if not put((items, more, None)) or not more:
                    return
                cursor = items[-1]["id"]
        except BaseException as exc:  # handed to the caller, raised there
            put(([], False, exc))

    reader = threading.Thread(target=read_ahead, name="stripe-pages-ahead", daemon=True)
    reader.start()
    try:
        while True:
            items, more, error = ready.get()
            if error is not None:
                raise error
            yield items, more
            if not more:
                return
    finally:
        stop.set()  # a request in flight ends on its own; nothing more is asked


def paginate(api: StripeApi, path: str, *, account: str | None = None, **params) -> Iterator[dict]:
    """Every object of a Stripe list endpoint, newest first (as Stripe lists them), one by one."""
    for items, _ in pages(api, path, account=account, **params):
        yield from items
