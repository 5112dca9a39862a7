"""The change context: what every function that changes the records gets (connection, account, origin,
version stamp, actor, the activity it writes), and the Stripe reads those functions may need."""
from __future__ import annotations

from dataclasses import dataclass, field

from domain import activity
from domain.accounts import to_api, to_key
from workers.stripe_api import NotFound, StripeApi, StripeRejected, StripeUnavailable
from workers.stripe_objects import embedded_refunds, when


class Waiting(Exception):
    """The change depends on a Stripe object we cannot get yet; an event waits and is retried."""

    def __init__(self, object_id: str, reason: str, *, unseen: bool = False):
        super().__init__(reason)
        self.object_id = object_id
        self.unseen = unseen  # we hold no such object (as opposed to: Stripe shows too little of it)


TEACHERY_KEY_PREFIX = "teachery-"  # idempotency keys of the requests our admin actions send


def origin_of(event: dict) -> str:
    """"teachery" for the events that our own admin actions caused in Stripe, else "stripe"."""
    request = event.get("request")
    key = request.get("idempotency_key") if isinstance(request, dict) else None
    return "teachery" if isinstance(key, str) and key.startswith(TEACHERY_KEY_PREFIX) else "stripe"


@dataclass
class Change:
    """The context every change to the records is applied in, whether a Stripe event or a command
    (an admin action, a reconciliation fix) asked for it: the transaction's connection, the account,
    where the change comes from, the version stamp, who asked, and the activity it writes."""
    conn: object
    account: str  # the storage key of the account ('' for the platform)
    stripe: StripeApi
    origin: str = "stripe"  # stripe | teachery | reconciliation
    stamp: int = 0  # the Stripe second this change is as of: an event's `created`, a record's version second
    event_id: str | None = None  # the Stripe event applied, if any: its changes are dated with its time
    actor: str | None = None  # the admin token's name, for an admin action
    action_id: str | None = None  # the admin action, named in every activity message it writes
    touched: set = field(default_factory=set)
    entries: list = field(default_factory=list)

    def version(self, rank: int) -> tuple[int, int]:
        return (self.stamp, rank)

    def log(self, customer_id: str | None, kind: str, message: str, record_type: str, record_id: str) -> None:
        """Note a change to a customer's records (written when the handler finishes)."""
        if self.action_id:
            message = f"{message} (admin action {self.action_id})"
        self.entries.append(activity.Entry(
            customer_id=customer_id, account=self.account, kind=kind, message=message, origin=self.origin,
            at=when(self.stamp) if self.event_id else None, stripe_event_id=self.event_id,
            record_type=record_type, record_id=record_id, actor=self.actor,
        ))

    def flush(self) -> None:
        activity.write(self.conn, self.entries)
        self.entries.clear()

    def fetch(self, kind: str, object_id: str, **params) -> dict:
        """Read an object we have never seen from Stripe, with the change's account; Waiting on failure."""
        try:
            return self.stripe.retrieve(kind, object_id, account=to_api(self.account), **params)
        except StripeUnavailable as exc:
            raise Waiting(object_id, f"waiting for {kind} {object_id}: {exc}", unseen=True) from exc
        except NotFound as exc:
            where = f" on account {self.account}" if self.account else ""
            raise Waiting(object_id, f"waiting for {kind} {object_id}: Stripe has no such object{where}",
                          unseen=True) from exc

    def settle_tie(self, kind: str, object_id: str) -> dict | None:
        """Two different states of one object carry the same second: ask Stripe which is current.

        None when Stripe cannot be asked; the caller then keeps the later arrival.
        """
        return self.peek(kind, object_id)

    def peek(self, kind: str, object_id: str) -> dict | None:
        """Read an object from Stripe when it can be asked; None (never waiting) when it cannot."""
        if not self.stripe.configured:
            return None
        try:
            return self.stripe.retrieve(kind, object_id, account=to_api(self.account))
        except (StripeUnavailable, NotFound):
            return None

    def list_invoice_payments(self, invoice_id: str, *, wait: bool = True) -> list[dict]:
        """The invoice_payment objects of a basil invoice (`GET /v1/invoice_payments?invoice=`): which payment
        intents tried to pay it, when the invoice payload does not include them. When Stripe cannot be
        asked: Waiting, or with `wait=False` an empty list (the caller has another way)."""
        try:
            if not self.stripe.configured and not wait:
                return []
            page = self.stripe.request("get", "/v1/invoice_payments", account=to_api(self.account),
                                       invoice=invoice_id, limit=100)
        except (StripeUnavailable, NotFound, StripeRejected) as exc:
            if not wait:
                return []
            raise Waiting(invoice_id, f"waiting for the payments of invoice {invoice_id}: {exc}") from exc
        return [p for p in page.get("data", []) if isinstance(p, dict)]

    def list_page(self, path: str, **filters) -> list[dict]:
        """The first page (up to 100, newest first) of a Stripe list with these filters, with the change's
        account: empty when Stripe refuses the request (a list this API version lacks); Waiting when
        Stripe cannot be asked."""
        try:
            page = self.stripe.request("get", path, account=to_api(self.account), limit=100, **filters)
        except (NotFound, StripeRejected):
            return []
        except StripeUnavailable as exc:
            raise Waiting(path, f"waiting for {path}: {exc}") from exc
        return [item for item in page.get("data") or [] if isinstance(item, dict)]

    def list_refunds(self, charge_id: str, *, adding_up_to: int) -> list[dict]:
        """The refunds of a charge, at least `adding_up_to` in all (what the charge reports refunded):
        `GET /v1/refunds?charge=`, or else the charge with its refunds expanded (Stripe stand-ins may
        serve only one of the two). Waiting while neither shows them all."""
        account = to_api(self.account)
        reason = "Stripe shows fewer refunds than the charge reports"
        try:
            page = self.stripe.request("get", "/v1/refunds", account=account, charge=charge_id, limit=100)
            refunds = [r for r in page.get("data", []) if isinstance(r, dict)]
            if _total(refunds) >= adding_up_to:
                return refunds
        except (StripeUnavailable, NotFound, StripeRejected) as exc:
            reason = str(exc)
        try:
            charge = self.stripe.retrieve("charge", charge_id, account=account, expand=["refunds"])
            refunds, _ = embedded_refunds(charge)
            if _total(refunds) >= adding_up_to:
                return refunds
        except (StripeUnavailable, NotFound, StripeRejected):
            pass
        raise Waiting(charge_id, f"waiting for the refunds of charge {charge_id}: {reason}")


def _total(refunds: list[dict]) -> int:
    return sum(r["amount"] for r in refunds if isinstance(r.get("amount"), int))


@dataclass
class EventContext(Change):
    """A Change that applies one Stripe event: what an event handler gets."""
    event: dict = field(default_factory=dict)

    @classmethod
    def of(cls, conn, event: dict, stripe: StripeApi) -> EventContext:
        created = event.get("created")
        return cls(conn, to_key(event.get("account")), stripe, origin=origin_of(event), event_id=event.get("id"),
                   stamp=created if isinstance(created, int) and not isinstance(created, bool) else 0, event=event)

    @property
    def type(self) -> str:
        return self.event.get("type", "")

    @property
    def obj(self) -> dict:
        return self.event["data"]["object"]
