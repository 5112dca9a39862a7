"""A process that calls Stripe's API through the service's own client, for the tests of the shared rate
limit: `python -m tests.stripe_caller ACCOUNT CUSTOMER CALLS START_AT`.

Its settings come from the environment, as every process of the service reads them (REDIS_URL,
STRIPE_API_BASE, STRIPE_API_KEY, STRIPE_MAX_REQUESTS_PER_SECOND), and its client from the composition
root; it waits until the wall clock reaches START_AT (so that several start together), then retrieves
the customer CALLS times in the account (`platform`: the platform's own) and exits 0.
"""
from __future__ import annotations

import sys
import time

from teachery_sync.bootstrap import build


def main(account: str, customer: str, calls: int, start_at: float) -> None:
    services = build()
    account_id = None if account == "platform" else account
    time.sleep(max(0.0, start_at - time.time()))
    for _ in range(calls):
        services.stripe.retrieve("customer", customer, account=account_id)
    services.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
