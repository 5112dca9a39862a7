"""Every trigger of `teachery-sync trigger`, in an order in which each finds what it acts on."""
from __future__ import annotations

from trigger import build_events
from trigger import samples as sample_objects
from trigger.scenarios import TriggerOptions, TriggerState

HISTORY = [
    ("checkout.session.completed", {}),
    ("charge.refunded", {"amount": 1000}),
    ("refund.failed", {}),
    ("charge.refunded", {}),
    ("charge.failed", {}),
    ("checkout.session.completed", {"mode": "subscription"}),
    ("invoice.paid", {}),
    ("customer.subscription.updated", {"change": "pause", "behavior": "keep_as_draft"}),
    ("customer.subscription.updated", {"change": "resume"}),
    ("customer.subscription.updated", {"change": "cancel-at-period-end"}),
    ("customer.subscription.updated", {"change": "reactivate"}),
    ("customer.subscription.paused", {}),
    ("customer.subscription.resumed", {}),
    ("customer.subscription.deleted", {}),
    ("customer.updated", {"name": "Jenny R. Rosen"}),
    ("customer.deleted", {}),
]


def history(api_version: str = sample_objects.DEFAULT_API_VERSION, account: str | None = None):
    state = TriggerState(None)
    for event_type, fields in HISTORY:
        yield event_type, build_events(event_type, TriggerOptions(account=account, **fields), state,
                                       api_version=api_version)
