"""Reading Stripe objects as plain dicts, across API versions (2016-03-07 … 2025-03-31.basil and later).

Pure functions: no I/O. Where a field moved between versions, every known place is tried.
"""
from __future__ import annotations

from datetime import UTC, datetime

from domain.times import iso

PAUSE_BEHAVIORS = ("void", "keep_as_draft", "mark_uncollectible")  # Stripe's pause_collection.behavior
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")  # Stripe's reasons for POST /v1/refunds


def ref(value) -> str | None:
    """An id from a field that is either an id or an expanded object."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return value["id"]
    return None


def when(value) -> datetime | None:
    """A Stripe epoch-seconds field as an aware UTC datetime."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return datetime.fromtimestamp(value, tz=UTC)
    return None


def integer(value, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def metadata_course(obj: dict | None) -> str | None:
    """metadata.course_id of a Stripe object, or None."""
    if not isinstance(obj, dict):
        return None
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        course = meta.get("course_id")
        if isinstance(course, (str, int)) and not isinstance(course, bool) and str(course).strip():
            return str(course).strip()
    return None


def listed(value) -> list[dict]:
    """The items of a Stripe list object (or a bare list)."""
    if isinstance(value, dict):
        value = value.get("data")
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def contact(obj: dict) -> tuple[str | None, str | None]:
    """(name, email) a purchase payload states for its customer."""
    for key in ("customer_details", "billing_details"):
        details = obj.get(key)
        if isinstance(details, dict) and (details.get("email") or details.get("name")):
            return _text(details.get("name")), _text(details.get("email"))
    name, email = _text(obj.get("customer_name")), _text(obj.get("customer_email") or obj.get("receipt_email"))
    return name, email


def _text(value) -> str | None:
    return value if isinstance(value, str) and value else None


# --- invoices -------------------------------------------------------------------------------

def invoice_subscription(invoice: dict) -> str | None:
    """The subscription an invoice bills: `subscription` before basil, `parent.subscription_details` after."""
    sub = ref(invoice.get("subscription"))
    if sub:
        return sub
    parent = invoice.get("parent")
    if isinstance(parent, dict) and isinstance(parent.get("subscription_details"), dict):
        sub = ref(parent["subscription_details"].get("subscription"))
        if sub:
            return sub
    for line in listed(invoice.get("lines")):
        sub = ref(line.get("subscription"))
        if sub:
            return sub
        parent = line.get("parent")
        details = parent.get("subscription_item_details") if isinstance(parent, dict) else None
        if isinstance(details, dict) and ref(details.get("subscription")):
            return ref(details.get("subscription"))
    return None


def invoice_course(invoice: dict) -> str | None:
    """metadata.course_id of the subscription an invoice bills, as the invoice carries it."""
    candidates = [invoice, invoice.get("subscription_details")]
    parent = invoice.get("parent")
    if isinstance(parent, dict):
        candidates.append(parent.get("subscription_details"))
    for line in billed_lines(invoice):  # a line's own metadata, then its price's (before basil)
        candidates += [line, line.get("price"), line.get("plan")]
    for candidate in candidates:
        course = metadata_course(candidate)
        if course:
            return course
    return None


def billed_lines(invoice: dict) -> list[dict]:
    """An invoice's lines that bill something: not the credits for unused time on a price left
    (a move to another price invoiced at once credits the old price first)."""
    return [line for line in listed(invoice.get("lines")) if integer(line.get("amount"), 0) >= 0]


def invoice_prices(invoice: dict) -> list[str]:
    """The price ids an invoice's lines bill: `pricing.price_details.price` since basil, `price` before."""
    ids = []
    for line in billed_lines(invoice):
        pricing = line.get("pricing") if isinstance(line.get("pricing"), dict) else {}
        details = pricing.get("price_details") if isinstance(pricing.get("price_details"), dict) else {}
        price_id = ref(details.get("price")) or ref(line.get("price"))
        if price_id and price_id not in ids:
            ids.append(price_id)
    return ids


def invoice_payment_refs(invoice: dict) -> tuple[str | None, str | None]:
    """(charge, payment_intent) that paid an invoice: top-level before basil, `payments` after."""
    charge, intent = ref(invoice.get("charge")), ref(invoice.get("payment_intent"))
    if charge or intent:
        return charge, intent
    paid = [p for p in listed(invoice.get("payments")) if p.get("status") in (None, "paid")]
    for payment in paid:
        inner = payment.get("payment") if isinstance(payment.get("payment"), dict) else {}
        charge, intent = ref(inner.get("charge")), ref(inner.get("payment_intent"))
        if charge or intent:
            return charge, intent
    return None, None


def invoice_attempts(invoice: dict) -> list[tuple[str | None, str | None]] | None:
    """(charge, payment_intent) of every payment attempt an invoice names, whatever its outcome: the
    top-level `charge`/`payment_intent` before basil, `payments` (invoice_payment objects, open or paid)
    after. None when the payload cannot say (basil, `payments` not included)."""
    charge, intent = ref(invoice.get("charge")), ref(invoice.get("payment_intent"))
    if charge or intent:
        return [(charge, intent)]
    if not isinstance(invoice.get("payments"), dict):
        return None if "parent" in invoice or "payments" in invoice else []
    return invoice_payment_attempts(listed(invoice.get("payments")))


def invoice_payment_attempts(items: list[dict]) -> list[tuple[str | None, str | None]]:
    """(charge, payment_intent) of invoice_payment objects (basil)."""
    out = []
    for item in items:
        inner = item.get("payment") if isinstance(item.get("payment"), dict) else {}
        charge, intent = ref(inner.get("charge")), ref(inner.get("payment_intent"))
        if charge or intent:
            out.append((charge, intent))
    return out


# --- subscriptions ------------------------------------------------------------------------------

def subscription_period_end(sub: dict) -> datetime | None:
    """current_period_end: on the subscription before basil, on its items after."""
    if when(sub.get("current_period_end")):
        return when(sub.get("current_period_end"))
    ends = [when(item.get("current_period_end")) for item in listed(sub.get("items"))]
    ends = [e for e in ends if e]
    return max(ends) if ends else None


def pause_collection(sub: dict) -> dict | None:
    pause = sub.get("pause_collection")
    if not isinstance(pause, dict) or not pause.get("behavior"):
        return None
    return {"behavior": pause["behavior"], "resumes_at": iso(when(pause.get("resumes_at")))}


def subscription_course(sub: dict) -> str | None:
    course = metadata_course(sub)
    if course:
        return course
    for item in listed(sub.get("items")):
        course = metadata_course(item) or metadata_course(item.get("price")) or metadata_course(item.get("plan"))
        if course:
            return course
    return None


# --- charges and payment intents -------------------------------------------------------------

def charge_status(charge: dict) -> str:
    status = charge.get("status")
    if status in ("succeeded", "failed", "pending"):
        return status
    if status == "paid" or charge.get("paid") is True:  # API versions before 2015 said "paid"
        return "succeeded"
    return "failed" if charge.get("failure_code") else "pending"


def intent_charge(intent: dict) -> str | None:
    """The charge of a payment intent: `latest_charge` (2022-11-15+) or the last of `charges`."""
    latest = ref(intent.get("latest_charge"))
    if latest:
        return latest
    charges = listed(intent.get("charges"))
    succeeded = [c for c in charges if c.get("status") == "succeeded"]
    chosen = (succeeded or charges)[-1:] if charges else []
    return ref(chosen[0]) if chosen else None


def intent_attempt_charge(intent: dict) -> str | None:
    """The charge of a payment intent's last attempt, whatever its outcome: `last_payment_error.charge`
    of a failed attempt, else `latest_charge` (2022-11-15+), else the last of `charges`."""
    error = intent.get("last_payment_error")
    if isinstance(error, dict) and ref(error.get("charge")):
        return ref(error.get("charge"))
    latest = ref(intent.get("latest_charge"))
    if latest:
        return latest
    charges = listed(intent.get("charges"))
    return ref(charges[-1]) if charges else None


def embedded_refunds(charge: dict) -> tuple[list[dict], bool]:
    """Refunds a charge payload carries, and whether that list is complete.

    Since 2022-11-15 `charge.refunds` is no longer included unless expanded.
    """
    refunds = charge.get("refunds")
    if isinstance(refunds, dict):
        items = listed(refunds)
        return items, not refunds.get("has_more", False)
    if isinstance(refunds, list):
        return [r for r in refunds if isinstance(r, dict)], True
    return [], False
