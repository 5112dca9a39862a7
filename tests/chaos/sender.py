"""A sender that behaves like Stripe's webhook delivery: each delivery signed when it is sent, every
non-2xx answer and every connection error retried with exponential backoff, several deliveries in flight
at once, in bursts (each second's deliveries leave together).

It counts what happened: deliveries attempted, answers by status, connection errors, retries, and
whether every event was finally accepted (an event never accepted within `give_up_after` seconds is lost,
and the soak fails)."""
from __future__ import annotations

import collections
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.blackbox.service import sign

FIRST_BACKOFF = 0.25
MAX_BACKOFF = 4.0


class Sender:
    def __init__(self, url: str, *, threads: int = 16, give_up_after: float = 180):
        self.url = url + "/webhooks/stripe"
        self.threads = threads
        self.give_up_after = give_up_after
        self.lock = threading.Lock()
        self.statuses: collections.Counter = collections.Counter()  # every answer's status
        self.connection_errors = 0
        self.attempts = 0  # HTTP requests sent
        self.retries = 0
        self.accepted: set[str] = set()  # event ids answered 2xx at least once
        self.lost: list[str] = []
        self.unexpected: list[tuple] = []  # answers other than 2xx/503: (status, body, event type)
        self.local = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def deliver(self, event: dict) -> None:
        """One delivery, retried until a 2xx answer (as Stripe does, only faster)."""
        body = json.dumps(event).encode()
        backoff, deadline = FIRST_BACKOFF, time.monotonic() + self.give_up_after
        while True:
            try:
                r = self._session().post(self.url, data=body, timeout=15, headers={
                    "Stripe-Signature": sign(body), "Content-Type": "application/json; charset=utf-8",
                    "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"})
                status, text = r.status_code, r.text
            except requests.RequestException:
                status, text = None, ""
                self.local.session = requests.Session()  # a connection cut by a killed process: a new one
            with self.lock:
                self.attempts += 1
                if status is None:
                    self.connection_errors += 1
                else:
                    self.statuses[status] += 1
                if status is not None and 200 <= status < 300:
                    self.accepted.add(event["id"])
                    return
                if status not in (None, 503):
                    self.unexpected.append((status, text[:300], event["type"]))
                if time.monotonic() > deadline:
                    self.lost.append(event["id"])
                    return
                self.retries += 1
            time.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    def send_all(self, deliveries: list[dict], seconds: float, stop: threading.Event | None = None) -> None:
        """All deliveries over about `seconds`, a burst every second (0: as fast as they are answered)."""
        per_second = len(deliveries) / seconds if seconds > 0 else len(deliveries)
        with ThreadPoolExecutor(self.threads) as pool:
            start, sent = time.monotonic(), 0
            while sent < len(deliveries):
                due = min(len(deliveries), int((time.monotonic() - start + 1) * per_second))
                for e in deliveries[sent:due]:
                    pool.submit(self.deliver, e)
                sent = due
                time.sleep(max(0.0, start + (sent / per_second) - time.monotonic()))
                if stop is not None and stop.is_set():
                    break

    @property
    def answered_5xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)
