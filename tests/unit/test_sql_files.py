"""The repositories' SQL: named statements in domain/sql/*.sql, parsed once, and kept out of Python."""
from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

from domain import ledger, payments, sql

DOMAIN = Path(__file__).resolve().parents[2] / "domain"


def test_a_file_is_named_statements_without_their_comments():
    text = "-- what the file holds\n\n-- name: one\n-- what it does\nSELECT 1\n  -- aside\nFROM t;\n\n-- name: two\nSELECT 2\n"
    assert sql.parse(text) == {"one": "SELECT 1\nFROM t", "two": "SELECT 2"}


@pytest.mark.parametrize("text", ["SELECT 0\n-- name: one\nSELECT 1\n", "-- name: a\nSELECT 1\n-- name: a\nSELECT 2\n"])
def test_sql_outside_a_statement_or_a_name_twice_is_refused(text):
    with pytest.raises(ValueError):
        sql.parse(text)


def test_every_file_loads_and_no_statement_is_empty():
    files = [f.name for f in resources.files("domain.sql").iterdir() if f.name.endswith(".sql")]
    assert {"ledger.sql", "payments.sql", "customers.sql", "subscriptions.sql"} <= set(files)
    for name in files:
        statements = vars(sql.load(name.removesuffix(".sql")))
        assert statements and all(statements.values()), name


def test_no_sql_left_in_the_domain_modules():
    statement = re.compile(r"""["'(]\s*(SELECT\s|INSERT INTO|UPDATE \w+ SET|DELETE FROM|WITH \w+ AS)""")
    found = [f"{path.name}: {m.group(0)}" for path in sorted(DOMAIN.glob("*.py"))
             for m in statement.finditer(path.read_text())]
    assert found == []


def test_the_ingest_statement_keeps_its_shape():
    statement = ledger._record_statement(2, 3)
    assert re.findall(r"\$(\d+)", statement) == [str(n) for n in range(1, 2 + 3 * 7 + 1)]
    assert "%" not in statement and statement.count("::jsonb") == 3
    assert ledger._record_statement(2, 3) is statement  # composed once per shape


def test_refunds_count_in_the_statuses_defined_once():
    assert re.search(r"status IN \('pending', 'requires_action', 'succeeded'\)", payments.RECOMPUTE)
    assert payments.ACTIVE_REFUND_STATUSES == ("pending", "requires_action", "succeeded")


def test_the_claim_orders_by_every_ranked_type():
    for rank, types in enumerate(ledger.TYPE_RANKS):
        for type_ in types:
            assert f"WHEN '{type_}' THEN {rank}" in ledger.CLAIM_NEXT
    assert f"ELSE {ledger.OTHER_RANK} END" in ledger.CLAIM_NEXT and "{" not in ledger.CLAIM_NEXT


def test_the_event_list_has_one_statement_per_set_of_filters():
    everything = ledger._filtered(ledger.Q.list_events, ledger.LIST_FILTERS)
    assert all(f"%({name})s" in everything for name in ledger.LIST_FILTERS)
    assert "WHERE TRUE" in ledger._filtered(ledger.Q.list_events, ())
    assert "%(status)s" not in ledger._filtered(ledger.Q.list_events, ("type",))
