"""A lean, fast fake of Stripe's list and retrieve endpoints, rate-limited per account, for bench/reconcile.py.

    python bench/lean_stripe.py --objects 100000 --rate 100 [--port P] [--seed 7]

Serves bench/stripe_dataset.py's objects (its own process: it must not share the measured process's
CPU or GIL). Every full list page (limit 100, `starting_after`, `status=all`) is rendered to bytes at
start-up, keyed by (account, path, starting_after); a filtered list (`charge=`, `customer=`,
`created[gte]=`, another `limit`) is assembled from the objects' pre-rendered bytes. Endpoints:
`GET /v1/customers|charges|refunds|subscriptions` (newest first, `has_more`), `GET /v1/<kind>/{id}`
(a deleted customer answers its deletion stub), `GET /v1/events` and `GET /v1/checkout/sessions` (empty
lists), `GET /v1/payment_intents/{id}` (each charge's, derived from it). `Stripe-Account` selects the
account (none: the platform, which holds nothing).

Each account (the platform is one) gets a token bucket of R tokens refilled at R/s: a request beyond it
answers 429 with Stripe's error body and `Retry-After`. Counted per account: requests, 429s, 429s
after the first one, and requests that arrived before the Retry-After of an earlier 429 had passed;
per (account, kind, starting_after) how often each list page was read. `GET /_bench/stats` answers the
counts as JSON, `POST /_bench/reset` zeroes them and refills the buckets (neither is rate-limited).
Prints one line `ready <url> ...` on stdout once it listens.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from stripe_dataset import KINDS, LIST_PATHS, Dataset

RESOURCES = {**{path.rsplit("/", 1)[1]: kind for kind, path in LIST_PATHS.items()},
             "payment_intents": "payment_intent"}  # retrieved only
PAGE = 100
PLATFORM = "platform"
FAST_PARAMS = {"limit", "starting_after", "status"}


class Limiter:
    """A token bucket per account, and what the clients did with the 429s they got."""

    def __init__(self, rate: float):
        self.rate = rate
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.tokens: dict[str, float] = {}
            self.stamp: dict[str, float] = {}
            self.retry_until: dict[str, float] = {}
            self.requests: Counter = Counter()
            self.rejected: Counter = Counter()
            self.rejected_after_first: Counter = Counter()
            self.ignored_retry_after: Counter = Counter()
            self.first_rejected_at: dict[str, float] = {}

    def take(self, account: str) -> float | None:
        """None when the request may go on; else the seconds to wait (Retry-After)."""
        now = time.monotonic()
        with self.lock:
            self.requests[account] += 1
            if now < self.retry_until.get(account, 0.0):
                self.ignored_retry_after[account] += 1
            if self.rate <= 0:
                return None
            refill = (now - self.stamp.get(account, now)) * self.rate
            tokens = min(self.rate, self.tokens.get(account, self.rate) + refill)
            self.stamp[account] = now
            if tokens >= 1:
                self.tokens[account] = tokens - 1
                return None
            self.tokens[account] = tokens
            if self.rejected[account]:
                self.rejected_after_first[account] += 1
            else:
                self.first_rejected_at[account] = now
            self.rejected[account] += 1
            wait = (1 - tokens) / self.rate
            self.retry_until[account] = max(self.retry_until.get(account, 0.0), now + math.ceil(wait))
            return wait


class Store:
    """The dataset as bytes: pages, objects, and what each list is made of (for filtered lists)."""

    def __init__(self, dataset: Dataset):
        self.pages: dict[tuple[str, str, str | None], bytes] = {}
        self.objects: dict[tuple[str, str, str], bytes] = {}  # (account, kind, id) → JSON
        self.listed: dict[tuple[str, str], list[tuple[str, int, str | None, str | None, str]]] = {}
        for (account, kind), objs in dataset.stripe_objects().items():
            rows = []
            for obj in objs:
                raw = json.dumps(obj, separators=(",", ":")).encode()
                self.objects[(account, kind, obj["id"])] = raw
                rows.append((obj["id"], obj.get("created") or 0, obj.get("customer"), obj.get("charge"),
                             obj.get("status")))
            self.listed[(account, kind)] = rows
            path = LIST_PATHS[kind]
            after = None
            for start in range(0, max(1, len(rows)), PAGE):
                chunk = rows[start:start + PAGE]
                self.pages[(account, path, after)] = page_bytes(
                    [self.objects[(account, kind, r[0])] for r in chunk], start + PAGE < len(rows), path)
                after = chunk[-1][0] if chunk else None
            if kind == "charge":  # each charge's payment intent: what importing a charge we never saw asks
                for obj in objs:
                    self.objects[(account, "payment_intent", obj["payment_intent"])] = json.dumps(
                        payment_intent(obj), separators=(",", ":")).encode()
        for (account, cus_id), stub in dataset.deleted_customers().items():
            self.objects[(account, "customer", cus_id)] = json.dumps(stub).encode()

    def filtered(self, account: str, kind: str, params: dict) -> bytes:
        """A list page the start-up did not render: filters, another limit, subscriptions without status=all."""
        rows = self.listed.get((account, kind), [])
        gte = int(params.get("created[gte]") or 0)
        status = params.get("status")
        rows = [r for r in rows if r[1] >= gte
                and ("customer" not in params or r[2] == params["customer"])
                and ("charge" not in params or r[3] == params["charge"])
                and (kind != "subscription" or status == "all" or (r[4] == status if status else r[4] != "canceled"))]
        after = params.get("starting_after")
        if after:
            ids = [r[0] for r in rows]
            rows = rows[ids.index(after) + 1:] if after in ids else []
        limit = max(1, min(int(params.get("limit") or 10), 100))
        return page_bytes([self.objects[(account, kind, r[0])] for r in rows[:limit]], len(rows) > limit,
                          LIST_PATHS[kind])


def payment_intent(charge: dict) -> dict:
    """The succeeded payment intent of a one-off charge (no invoice, the charge's course)."""
    return {"id": charge["payment_intent"], "object": "payment_intent", "amount": charge["amount"],
            "amount_received": charge["amount"], "currency": charge["currency"], "customer": charge["customer"],
            "created": charge["created"], "invoice": None, "latest_charge": charge["id"], "livemode": False,
            "metadata": dict(charge.get("metadata") or {}), "status": "succeeded"}


def page_bytes(objects: list[bytes], has_more: bool, url: str) -> bytes:
    return (b'{"object":"list","data":[' + b",".join(objects) + b'],"has_more":'
            + (b"true" if has_more else b"false") + b',"url":"' + url.encode() + b'"}')


def error_bytes(type_: str, message: str, code: str | None = None) -> bytes:
    return json.dumps({"error": {"type": type_, "code": code, "message": message}}).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall between them
    server: Server

    def log_message(self, *args):  # quiet
        pass

    def answer(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Request-Id", f"req_bench{self.server.next_request()}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path == "/_bench/reset":
            self.server.reset()
            return self.answer(200, b"{}")
        self.answer(404, error_bytes("invalid_request_error", f"Unrecognized request URL (POST: {self.path})"))

    def do_GET(self):
        split = urlsplit(self.path)
        if split.path == "/_bench/stats":
            return self.answer(200, json.dumps(self.server.stats()).encode())
        account = self.headers.get("Stripe-Account") or PLATFORM
        wait = self.server.limiter.take(account)
        if wait is not None:
            return self.answer(429, error_bytes(
                "invalid_request_error", "Request rate limit exceeded. Learn more about rate limits here "
                "https://stripe.com/docs/rate-limits.", "rate_limit"), {"Retry-After": str(math.ceil(wait))})
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        parts = split.path.strip("/").split("/")
        if parts[:1] != ["v1"] or len(parts) not in (2, 3):
            return self.not_found()
        if parts[1] == "events" and len(parts) == 2:
            return self.answer(200, page_bytes([], False, "/v1/events"))
        if parts[1:] == ["checkout", "sessions"]:  # the dataset's charges come from no Checkout Session
            return self.answer(200, page_bytes([], False, split.path))
        kind = RESOURCES.get(parts[1])
        if kind is None or (len(parts) == 2 and kind not in LIST_PATHS):
            return self.not_found()
        if len(parts) == 3:
            raw = self.server.store.objects.get((account, kind, parts[2]))
            if raw is None:
                return self.answer(404, error_bytes("invalid_request_error", f"No such {kind}: '{parts[2]}'",
                                                    "resource_missing"))
            self.server.count("single", account, kind, parts[2])
            return self.answer(200, raw)
        after = params.get("starting_after")
        fast = (set(params) <= FAST_PARAMS and params.get("limit", "100") == "100"
                and (kind != "subscription" or params.get("status") == "all")
                and (kind == "subscription" or "status" not in params))
        raw = self.server.store.pages.get((account, split.path, after)) if fast else None
        if raw is None:
            if account not in (PLATFORM, *self.server.accounts):
                return self.answer(403, error_bytes("invalid_request_error", "The provided key does not have "
                                                    f"access to account '{account}'."))
            raw = (self.server.store.filtered(account, kind, params) if account != PLATFORM
                   else page_bytes([], False, split.path))
            self.server.count("filtered", account, kind, after)
        else:
            self.server.count("page", account, kind, after)
        self.answer(200, raw)

    def not_found(self):
        self.answer(404, error_bytes("invalid_request_error", f"Unrecognized request URL (GET: {self.path})"))


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, store: Store, rate: float, accounts: tuple[str, ...]):
        super().__init__(("127.0.0.1", port), Handler)
        self.store, self.limiter, self.accounts = store, Limiter(rate), accounts
        self.lock = threading.Lock()
        self.requests = 0
        self.reset()

    def handle_error(self, request, client_address):
        """A client that went away (a SIGKILLed worker) is expected here: say nothing; anything else as usual."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def next_request(self) -> int:
        with self.lock:
            self.requests += 1
            return self.requests

    def reset(self) -> None:
        self.limiter.reset()
        with self.lock:
            self.reads: dict[str, Counter] = defaultdict(Counter)  # "page|filtered|single" → key → reads

    def count(self, what: str, account: str, kind: str, key: str | None) -> None:
        with self.lock:
            self.reads[what][f"{account}|{kind}|{key or ''}"] += 1

    def stats(self) -> dict:
        lim = self.limiter
        with lim.lock, self.lock:
            return {"rate": lim.rate, "requests": dict(lim.requests), "rejected": dict(lim.rejected),
                    "rejected_after_first": dict(lim.rejected_after_first),
                    "ignored_retry_after": dict(lim.ignored_retry_after),
                    "reads": {what: dict(counts) for what, counts in self.reads.items()}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=100, help="requests/s per account (0: no limit)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    started = time.perf_counter()
    dataset = Dataset(args.objects, args.seed)
    store = Store(dataset)
    accounts = tuple(sorted({a for a, _ in dataset.stripe_objects()}))
    server = Server(args.port, store, args.rate, accounts)
    print(f"ready http://127.0.0.1:{server.server_address[1]} objects={dataset.total} pages={len(store.pages)} "
          f"kinds={','.join(KINDS)} built_in={time.perf_counter() - started:.1f}s", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
