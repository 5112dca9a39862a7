"""`teachery-sync trigger`: send realistic, correctly signed Stripe events to a running receiver.

Like the Stripe CLI's `stripe trigger`, one trigger sends every event Stripe would send for the
change (a purchase: customer.created, charge.succeeded, payment_intent.succeeded,
checkout.session.completed, …). The objects are kept in a state file so that later triggers
refund, pause or cancel what earlier ones created.
"""
from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from domain.db import redact_url
from trigger import samples
from trigger.scenarios import SCENARIOS, AccountObjects, TriggerError, TriggerOptions, TriggerState
from webhooks.signature import signature_header

__all__ = ["DEFAULT_URL", "TriggerError", "TriggerOptions", "TriggerState", "build_events", "run",
           "signature_header"]

DEFAULT_URL = "http://127.0.0.1:8000/webhooks/stripe"
USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


@dataclass(frozen=True)
class Delivery:
    """What the receiver answered for one event."""
    event: dict
    status: int
    body: str


def build_events(event_type: str, options: TriggerOptions, state: TriggerState, *,
                 api_version: str = samples.DEFAULT_API_VERSION, now: int | None = None) -> list[dict]:
    """The Event envelopes for this trigger; changes the objects in state (not saved here)."""
    scenario = SCENARIOS.get(event_type)
    if scenario is None:
        raise TriggerError(f"cannot trigger {event_type}; one of: {', '.join(SCENARIOS)}")
    created = samples.now() if now is None else now
    emitted = scenario(state.of(options.account), options, created)
    return [samples.event(e.type, e.obj, api_version=api_version, account=options.account,
                          created=created, before=e.before, from_request=e.from_request)
            for e in emitted if samples.sent_at(e.type, api_version)]


def post_event(url: str, event: dict, secret: str, timeout: float = 10.0) -> Delivery:
    """POST one signed event; the receiver's status and body (TriggerError when it is unreachable)."""
    body = json.dumps(event, indent=2).encode()  # Stripe sends pretty-printed JSON
    try:
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT,
            "Stripe-Signature": signature_header(body, secret)})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Delivery(event, response.status, response.read().decode(errors="replace"))
    except urllib.error.HTTPError as exc:
        return Delivery(event, exc.code, exc.read().decode(errors="replace"))
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TriggerError(f"cannot reach {redact_url(url)} ({reason}): is the service running "
                           "(`teachery-sync dev`)?") from exc
    except (ValueError, http.client.InvalidURL) as exc:  # a broken [IPv6] host, a port not in digits
        raise TriggerError(f"--url is not an http(s) URL: {exc}") from None


def send_all(url: str, events: list[dict], secret: str, echo) -> list[Delivery]:
    """Send in order; stop at the first event the receiver refuses."""
    deliveries = []
    for event in events:
        delivery = post_event(url, event, secret)
        deliveries.append(delivery)
        echo(f"  {delivery.status}  {event['type']:<32} {event['id']}")
        if delivery.status != 200:
            raise TriggerError(f"the receiver answered {delivery.status} to {event['type']}: "
                               f"{_error_of(delivery.body)}")
    return deliveries


def _error_of(body: str) -> str:
    try:
        return json.loads(body).get("error") or body
    except (ValueError, AttributeError):
        return body.strip()[:200]


def summary(objs: AccountObjects, events: list[dict], event_type: str, options: TriggerOptions) -> list[str]:
    """The objects these events carried, by kind and id, and a follow-up command that targets them."""
    used: dict[str, tuple[str, str]] = {}
    for event in events:
        obj = event["data"]["object"]
        used.setdefault(obj["id"], (obj["object"], obj["id"]))
    lines = [f"{kind:<17} {object_id}  {_describe(objs, kind, object_id)}".rstrip()
             for kind, object_id in used.values()]
    follow_up = NEXT_STEPS.get(event_type)
    if follow_up:
        account = f" --account {options.account}" if options.account else ""
        lines.append("next: " + follow_up(objs, options) + account)
    return lines


def _describe(objs: AccountObjects, kind: str, object_id: str) -> str:
    describe = DESCRIPTIONS.get(kind)
    obj = getattr(objs, f"{kind}s").get(object_id) if describe else None
    return describe(obj) if obj else ""


def _describe_charge(charge: dict) -> str:
    course = charge["metadata"].get("course_id")
    return (f"{charge['amount']} {charge['currency']} {charge['status']}, refunded {charge['amount_refunded']}"
            + (f", course {course}" if course else ""))


def _describe_subscription(subscription: dict) -> str:
    paused = subscription["pause_collection"]
    return (f"{subscription['status']}, course {subscription['metadata'].get('course_id', '-')}"
            + (f", collection paused ({paused['behavior']})" if paused else "")
            + (", cancels at period end" if subscription["cancel_at_period_end"] else ""))


DESCRIPTIONS = {  # by the objects' `object`: what the summary says of each
    "customer": lambda customer: f"{customer['name']} <{customer['email']}>",
    "charge": _describe_charge,
    "refund": lambda refund: f"{refund['amount']} {refund['currency']} {refund['status']}",
    "subscription": _describe_subscription,
}


def _next_after_purchase(objs: AccountObjects, options: TriggerOptions) -> str:
    if options.mode == "subscription":
        return (f"teachery-sync trigger customer.subscription.updated --pause "
                f"--subscription {objs.last['subscriptions']}")
    return f"teachery-sync trigger charge.refunded --charge {objs.last['charges']} --amount 1000"


NEXT_STEPS = {
    "checkout.session.completed": _next_after_purchase,
    "charge.refunded": lambda objs, _: f"teachery-sync trigger refund.failed --refund {objs.last['refunds']}",
}


def run(event_type: str, options: TriggerOptions, *, url: str, secret: str, state_path: Path | None,
        api_version: str, echo=print, dry_run: bool = False) -> list[dict]:
    """Build, sign and send the events of one trigger, then save the state; returns the events."""
    state = TriggerState.load(state_path)
    events = build_events(event_type, options, state, api_version=api_version)
    if dry_run:
        echo(json.dumps(events, indent=2))
        return events
    echo(f"sending {len(events)} event(s) to {redact_url(url)}")
    send_all(url, events, secret, echo)
    state.save()  # only once every event was accepted: a refused trigger can simply be run again
    for line in summary(state.of(options.account), events, event_type, options):
        echo(line)
    return events
