"""A stateful fake Stripe for the admin actions: FakeStripeApi (tests/stripe_events.py) answers reads;
this adds the writes our admin actions make, and the events Stripe would send about them.

Writes answered: POST /v1/refunds, POST /v1/customers/{id}, POST and DELETE /v1/subscriptions/{id},
POST /v1/subscriptions/{id}/resume. Every write is recorded with its form parameters, Stripe-Account
and Idempotency-Key headers; a repeated Idempotency-Key gets the first answer again, as Stripe
replays it. Each change queues the events Stripe would send (with `request.idempotency_key`), which
a test takes with take_events() and delivers through the receiver. The fake has its own clock
(`now`, a second per change), deliberately not the wall clock.
"""
from __future__ import annotations

import copy
import json
from urllib.parse import parse_qsl, urlsplit

from tests.stripe_events import DAY, T0, FakeStripeApi, event, new_id, refund

ACTIVE_REFUND = ("pending", "requires_action", "succeeded")


class StripeError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class FakeStripeWorld(FakeStripeApi):
    def __init__(self, rsps, base: str, *, now: int = T0 + 10 * DAY):
        super().__init__(rsps, base)
        self.now = now
        self.refund_status = "pending"  # what POST /v1/refunds answers (real card refunds often say succeeded)
        self.writes: list[dict] = []
        self._replies: dict[str, tuple[int, str]] = {}
        self._events: list[dict] = []

    # --- what tests use ----------------------------------------------------------------------

    def take_events(self) -> list[dict]:
        """The events Stripe would have sent since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    def writes_to(self, path_part: str) -> list[dict]:
        return [w for w in self.writes if path_part in w["path"]]

    def get(self, kind: str, object_id: str, account: str | None = None) -> dict:
        return self.objects[(account, f"/v1/{kind}/{object_id}")]

    def settle_refund(self, refund_id: str, status: str, *, account: str | None = None,
                      type_: str = "refund.updated") -> dict:
        """Stripe finishing a refund later (succeeded, failed, canceled): the event it sends."""
        obj = self.get("refunds", refund_id, account)
        if obj["status"] in ACTIVE_REFUND and status not in ACTIVE_REFUND:
            self._charge_of(obj, account)["amount_refunded"] -= obj["amount"]
        obj["status"] = status
        self._tick()
        if status == "failed":
            obj["failure_reason"] = "expired_or_canceled_card"
        return self._event(type_, obj, None, account)

    def refund_elsewhere(self, charge_id: str, amount: int, *, account: str | None = None) -> dict:
        """A refund made in Stripe's dashboard; its events are not delivered unless a test sends them."""
        obj, _ = self._create_refund(account, {"charge": charge_id, "amount": str(amount)}, None)
        self._events.clear()
        return obj

    # --- the HTTP side -------------------------------------------------------------------------

    def _answer(self, request):
        if self.down or request.method == "GET":
            return super()._answer(request)
        url = urlsplit(request.url)
        account = request.headers.get("Stripe-Account")
        key = request.headers.get("Idempotency-Key")
        body = request.body.decode() if isinstance(request.body, bytes) else (request.body or "")
        params = dict(parse_qsl(body, keep_blank_values=True))
        self.writes.append({"method": request.method, "path": url.path, "account": account,
                            "idempotency_key": key, "params": params})
        self.calls.append({"method": request.method, "path": url.path, "query": url.query, "account": account})
        headers = {"Content-Type": "application/json", "Request-Id": "req_fake"}
        if key in self._replies:
            status, text = self._replies[key]
            return status, {**headers, "Idempotent-Replayed": "true"}, text
        try:
            status, answer = 200, self._write(request.method, url.path, account, params, key)
        except StripeError as exc:
            headers["Stripe-Should-Retry"] = "false"
            status, answer = exc.status, {"error": {"type": "invalid_request_error", "code": exc.code,
                                                    "message": exc.message}}
        text = json.dumps(answer)
        if key:
            self._replies[key] = (status, text)
        return status, headers, text

    def _write(self, method: str, path: str, account, params: dict, key) -> dict:
        parts = path.strip("/").split("/")  # v1, resource, id, action
        if method == "POST" and parts[1:] == ["refunds"]:
            return self._create_refund(account, params, key)[0]
        if len(parts) < 3:
            raise StripeError(404, "resource_missing", f"Unrecognized request URL ({method}: {path})")
        obj = self.objects.get((account, f"/v1/{parts[1]}/{parts[2]}"))
        if obj is None:
            raise StripeError(404, "resource_missing", f"No such {parts[1][:-1]}: '{parts[2]}'")
        if parts[1] == "customers" and method == "POST":
            return self._update(obj, "customer.updated", {k: params[k] for k in ("name", "email") if k in params},
                                account, key)
        if parts[1] == "subscriptions":
            if obj["status"] == "canceled":
                raise StripeError(400, "resource_missing" if method == "DELETE" else None,
                                  "A canceled subscription can only update its cancellation_details and metadata.")
            if method == "DELETE":
                return self._update(obj, "customer.subscription.deleted",
                                    {"status": "canceled", "canceled_at": self.now + 1, "ended_at": self.now + 1},
                                    account, key)
            if parts[3:] == ["resume"]:
                if obj["status"] != "paused":
                    raise StripeError(400, None, "Only a paused subscription can be resumed.")
                return self._update(obj, "customer.subscription.resumed", {"status": "active"}, account, key)
            return self._update(obj, "customer.subscription.updated", self._subscription_changes(obj, params),
                                account, key)
        raise StripeError(404, "resource_missing", f"Unrecognized request URL ({method}: {path})")

    def _subscription_changes(self, sub: dict, params: dict) -> dict:
        changes = {}
        if "cancel_at_period_end" in params:
            at_end = params["cancel_at_period_end"] == "true"
            changes.update(cancel_at_period_end=at_end, cancel_at=sub.get("current_period_end") if at_end else None)
        if params.get("pause_collection") == "":
            changes["pause_collection"] = None  # Stripe's way of clearing it: an empty string
        elif "pause_collection[behavior]" in params:
            resumes = params.get("pause_collection[resumes_at]")
            changes["pause_collection"] = {"behavior": params["pause_collection[behavior]"],
                                           "resumes_at": int(resumes) if resumes else None}
        return changes

    def _update(self, obj: dict, type_: str, changes: dict, account, key) -> dict:
        previous = {k: copy.deepcopy(obj.get(k)) for k in changes}
        obj.update(changes)
        self._tick()
        self._event(type_, obj, key, account, previous_attributes=previous)
        return copy.deepcopy(obj)

    def _create_refund(self, account, params: dict, key) -> tuple[dict, dict]:
        charge = self.objects.get((account, f"/v1/charges/{params.get('charge')}"))
        if charge is None:
            raise StripeError(404, "resource_missing", f"No such charge: '{params.get('charge')}'")
        left = charge["amount"] - charge["amount_refunded"]
        amount = int(params.get("amount", left))
        if left <= 0 or amount > left:
            raise StripeError(400, "charge_already_refunded",
                              f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})"
                              if left > 0 else f"Charge {charge['id']} has already been refunded.")
        obj = refund(new_id("re"), charge=charge["id"], amount=amount, status=self.refund_status,
                     created=self._tick(), payment_intent=charge.get("payment_intent"),
                     reason=params.get("reason"), currency=charge["currency"])
        obj["metadata"] = {k[len("metadata["):-1]: v for k, v in params.items() if k.startswith("metadata[")}
        self.put(obj, account=account)
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        if isinstance(charge.get("refunds"), dict):
            charge["refunds"]["data"].insert(0, copy.deepcopy(obj))
            charge["refunds"]["total_count"] += 1
        self._event("charge.refunded", charge, key, account)
        self._event("refund.created", obj, key, account)
        return copy.deepcopy(obj), charge

    def _charge_of(self, refund_obj: dict, account) -> dict:
        return self.get("charges", refund_obj["charge"], account)

    def _tick(self) -> int:
        self.now += 1
        return self.now

    def _event(self, type_: str, obj: dict, key, account, **extra) -> dict:
        envelope = event(type_, obj, created=self.now, account=account, **extra)
        envelope["request"] = {"id": new_id("req"), "idempotency_key": key}
        self._events.append(envelope)
        return envelope
