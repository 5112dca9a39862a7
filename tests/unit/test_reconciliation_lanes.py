"""A run's lanes (an account each, read side by side) and their cursors, read too from the one cursor of
runs recorded before lanes, whose accounts were read one after the other."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.reconciliations import APPLIED, Run, lane_cursors, lane_key

pytestmark = pytest.mark.unit

ACCOUNTS = ["", "acct_1A", "acct_1B", "acct_1C"]  # storage keys: "" is the platform


def _run(cursor: dict | None, applies: str | None = None) -> Run:
    return Run(id="r", status="running", dry_run=False, account=None, customer=None, since=None, changed_since=None,
               applies=applies, trigger="admin", started_at=datetime.now(UTC), finished_at=None, checked=0, fixed=0,
               cursor=cursor, progress={}, resumed=1, error=None)


def test_lane_keys_are_the_progress_labels():
    assert [lane_key(a) for a in ACCOUNTS] == ["platform", "acct_1A", "acct_1B", "acct_1C"]


def test_a_run_not_begun_has_no_lane_cursor():
    assert lane_cursors(_run(None), ACCOUNTS) == {}


def test_lanes_are_read_as_recorded():
    lanes = {"acct_1A": {"done": True}, "acct_1C": {"account": "acct_1C", "kind": "charge", "after": "ch_9"}}
    assert lane_cursors(_run({"lanes": lanes}), ACCOUNTS) == lanes


def test_the_single_cursor_of_an_older_run_finished_the_accounts_before_it():
    old = {"account": "acct_1B", "kind": "refund", "after": "re_3"}
    assert lane_cursors(_run(old), ACCOUNTS) == {"platform": {"done": True}, "acct_1A": {"done": True}, "acct_1B": old}


def test_an_older_run_on_the_platform_had_finished_nothing_else():
    old = {"account": None, "kind": "customer", "after": "cus_1"}
    assert lane_cursors(_run(old), ACCOUNTS) == {"platform": old}


def test_a_run_applying_a_dry_run_has_one_lane():
    old = {"account": "acct_1B", "kind": "customer", "after": "cus_2"}
    assert lane_cursors(_run(old, applies="dry"), ACCOUNTS) == {APPLIED: old}
