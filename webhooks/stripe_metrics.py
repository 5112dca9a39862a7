"""The Stripe API's rate per account on GET /metrics: the counters the shared limiter keeps in Redis
(workers/rate_limit.py), read at scrape time like the ledger's gauges, so every process's calls count
and every gunicorn worker answers the same."""
from __future__ import annotations

from prometheus_client.core import CounterMetricFamily

from workers.rate_limit import read_counts
from workers.services import Services


class StripeRateCollector:
    """Requests sent to Stripe, 429s received and seconds waited for the rate limit, per account
    (`platform`, or the `acct_…` ids we called: the label set grows only with accounts we call)."""

    def __init__(self, services: Services):
        self.services = services

    def collect(self):
        counts = read_counts(self.services.redis)
        requests = CounterMetricFamily("teachery_stripe_requests", "Requests sent to Stripe's API",
                                       labels=["account"])
        limited = CounterMetricFamily("teachery_stripe_rate_limited",
                                      "Answers 429 (rate limit or lock timeout) received from Stripe",
                                      labels=["account"])
        waited = CounterMetricFamily("teachery_stripe_rate_limit_wait_seconds",
                                     "Seconds Stripe calls waited for the account's rate limit or a 429",
                                     labels=["account"])
        for account, found in counts.items():
            requests.add_metric([account], found.requests)
            limited.add_metric([account], found.rate_limited)
            waited.add_metric([account], found.wait_seconds)
        yield from (requests, limited, waited)
