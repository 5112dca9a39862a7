"""A process that calls Stripe's API through the service's own client, for the tests of the shared rate
limit: `python -m tests.stripe_caller ACCOUNT CUSTOMER CALLS`.

Its settings come from the environment, as every process of the service reads them (REDIS_URL,
STRIPE_API_BASE, STRIPE_API_KEY, STRIPE_MAX_REQUESTS_PER_SECOND), and its client from the composition
root. It prints `ready` once built and waits for a line on stdin (so that several start together),
then retrieves the customer CALLS times in the account (`platform`: the platform's own) and exits 0.
"""
from __future__ import annotations

import sys

from teachery_sync.bootstrap import build


def main(account: str, customer: str, calls: int) -> None:
    services = build()
    account_id = None if account == "platform" else account
    print("ready", flush=True)
    sys.stdin.readline()
    for _ in range(calls):
        services.stripe.retrieve("customer", customer, account=account_id)
    services.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
