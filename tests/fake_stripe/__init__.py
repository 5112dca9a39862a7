"""The one fake Stripe every suite uses: a stateful fake of Stripe's API behind a real local HTTP
server, which the service reaches through STRIPE_API_BASE (see server.py for what it answers).

In-process suites share one server per test process (`shared_server()`), reset per test by the
`stripe_api` fixture; the black-box suite runs its own next to the service's processes.
"""
from __future__ import annotations

from tests.fake_stripe.server import (
    ACTIVE_REFUND,
    BASIL,
    DAY,
    T0,
    FakeStripe,
    FakeStripeServer,
    Held,
    StripeError,
    new_id,
)

__all__ = ["ACTIVE_REFUND", "BASIL", "DAY", "T0", "FakeStripe", "FakeStripeServer", "Held", "StripeError", "new_id",
           "shared_server"]

_shared: FakeStripeServer | None = None


def shared_server() -> FakeStripeServer:
    """This process's fake Stripe server, started on first use; it lives as long as the process."""
    global _shared
    if _shared is None:
        _shared = FakeStripeServer().start()
    return _shared
