"""Amounts as people write them ("12.50") and as Stripe counts them (1250, the currency's minor unit), both
ways and exactly: Decimal, never float.

Stripe's minor units: most currencies have two decimals; the zero-decimal ones (JPY, KRW, ...) none; the
three-decimal ones (BHD, JOD, KWD, OMR, TND) three (Stripe: "Zero-decimal currencies", "Three-decimal
currencies").
"""
from __future__ import annotations

import re
from decimal import Decimal

ZERO_DECIMAL = {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf",
                "xof", "xpf"}
THREE_DECIMAL = {"bhd", "jod", "kwd", "omr", "tnd"}
# ASCII digits only (\d takes "٣" too); a dozen decimals at most, so that a message may quote what was written
_WRITTEN = re.compile(r"^([0-9]{1,12})(?:\.([0-9]{0,12}))?$")


class BadAmount(ValueError):
    """The text is not an amount of this currency; the message says how to write one."""


def decimals(currency: str | None) -> int:
    code = (currency or "").lower()
    return 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2


def as_written(amount: int, currency: str | None) -> str:
    """1250, "usd" → "12.50"; 500, "jpy" → "500" (no thousands separators: it goes back into a form)."""
    places = decimals(currency)
    return str(amount) if places == 0 else f"{Decimal(amount).scaleb(-places):.{places}f}"


def to_minor(text: str, currency: str | None) -> int:
    """"12.5", "usd" → 1250: the amount in the currency's minor unit; BadAmount when it is not one."""
    places = decimals(currency)
    example = "500" if places == 0 else "12." + "5" * places
    cleaned = text.strip().replace(" ", "")
    match = _WRITTEN.match(cleaned)
    if not match:
        raise BadAmount(f"write the amount as a number like {example}"
                        f"{'' if places == 0 else ' (a dot before the decimals, no thousands separators)'}")
    whole, fraction = match.group(1), (match.group(2) or "").rstrip("0")
    if len(fraction) > places:
        unit = "whole units: this currency has no decimals" if places == 0 else f"at most {places} decimals"
        raise BadAmount(f"{text.strip()} {(currency or '').upper()} cannot be paid: {unit}")
    minor = int(whole) * 10 ** places + int((fraction or "0").ljust(places, "0")[:places] or "0")
    if minor <= 0:
        raise BadAmount("the amount must be more than zero")
    return minor
