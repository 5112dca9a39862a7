"""Amounts as people write them and as Stripe counts them (webhooks/console/amounts.py): exact both ways."""
from __future__ import annotations

import pytest

from webhooks.console.amounts import BadAmount, as_written, to_minor


@pytest.mark.parametrize("text, currency, minor", [
    ("12.50", "usd", 1250), ("12.5", "usd", 1250), ("12", "eur", 1200), (" 0.01 ", "usd", 1),
    ("0.29", "usd", 29),  # float(0.29) * 100 is 28.999999999999996
    ("1 000.10", "gbp", 100010), ("500", "jpy", 500), ("500.00", "jpy", 500), ("1.234", "kwd", 1234),
    ("999999999999.99", "usd", 99999999999999),
])
def test_written_amounts_become_minor_units_exactly(text, currency, minor):
    assert to_minor(text, currency) == minor


@pytest.mark.parametrize("text, currency, message", [
    ("", "usd", "like 12.55"), ("abc", "usd", "like 12.55"), ("12,50", "eur", "no thousands separators"),
    ("-1", "usd", "like 12.55"), ("1e3", "usd", "like 12.55"), ("0", "usd", "more than zero"),
    ("0.00", "usd", "more than zero"), ("1.005", "usd", "at most 2 decimals"), ("1.5", "jpy", "no decimals"),
    ("1.2345", "bhd", "at most 3 decimals"), ("1" * 13, "usd", "like 12.55"), ("٣", "usd", "like 12.55"),
])
def test_what_is_not_an_amount_says_how_to_write_one(text, currency, message):
    with pytest.raises(BadAmount, match=message):
        to_minor(text, currency)


@pytest.mark.parametrize("minor, currency, text", [
    (1250, "usd", "12.50"), (5, "usd", "0.05"), (500, "jpy", "500"), (1234, "kwd", "1.234"), (100000, "eur", "1000.00"),
])
def test_minor_units_are_written_back_as_people_write_them(minor, currency, text):
    assert as_written(minor, currency) == text
    assert to_minor(text, currency) == minor
