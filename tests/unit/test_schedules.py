"""The reconciliation schedules: RECONCILE_SCHEDULE / RECONCILE_FULL_SCHEDULE read and checked, the
schedules the clock registers, and the slot a job enqueued by the clock belongs to."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.settings import ConfigError, Settings
from teachery_sync.clock import schedules
from workers.scheduled import slot_key, slot_of


def test_defaults_nightly_at_3_and_weekly_on_sunday_at_4():
    settings = Settings.from_env({})
    assert (settings.reconcile_schedule, settings.reconcile_full_schedule) == ("0 3 * * *", "0 4 * * 0")
    assert schedules(settings) == {"nightly": "0 3 * * *", "weekly": "0 4 * * 0"}


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_turns_a_schedule_off(value):
    settings = Settings.from_env({"RECONCILE_SCHEDULE": value, "RECONCILE_FULL_SCHEDULE": "30 1 * * 6"})
    assert settings.reconcile_schedule == ""
    assert schedules(settings) == {"weekly": "30 1 * * 6"}
    assert schedules(Settings.from_env({"RECONCILE_SCHEDULE": "", "RECONCILE_FULL_SCHEDULE": ""})) == {}


@pytest.mark.parametrize("value, kept", [("*/15 2-4 * * MON-FRI", "*/15 2-4 * * MON-FRI"),
                                         ("  0   3 * * *  ", "0 3 * * *")])
def test_valid_expressions_are_kept(value, kept):
    assert Settings.from_env({"RECONCILE_FULL_SCHEDULE": value}).reconcile_full_schedule == kept


@pytest.mark.parametrize("value, reason", [
    ("nightly", "has 1 field(s)"),
    ("0 3 * *", "has 4 field(s)"),
    ("0 0 3 * * *", "has 6 field(s)"),  # croniter would read a sixth field as seconds
    ("@daily", "has 1 field(s)"),
    ("61 * * * *", "is not valid"),
    ("0 3 * * 8", "is not valid"),
    ("0 3 30 2 *", "never comes (no such date)"),
])
@pytest.mark.parametrize("key", ["RECONCILE_SCHEDULE", "RECONCILE_FULL_SCHEDULE"])
def test_malformed_expressions_are_refused_naming_the_variable(key, value, reason):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({key: value})
    message = str(caught.value)
    assert message.startswith(f"{key} must be a cron expression of five fields")
    assert repr(value) in message and reason in message
    assert "\n" not in message


@pytest.mark.parametrize("enqueued_at, slot", [
    (datetime(2026, 12, 2, 3, 0, 0, 300_000, tzinfo=UTC), datetime(2026, 12, 2, 3, 0, tzinfo=UTC)),
    (datetime(2026, 12, 2, 3, 0, tzinfo=UTC), datetime(2026, 12, 2, 3, 0, tzinfo=UTC)),  # at the very microsecond
    (datetime(2026, 12, 2, 3, 7, 30), datetime(2026, 12, 2, 3, 0, tzinfo=UTC)),  # a late clock; naive is UTC (RQ's)
    (datetime(2026, 12, 2, 2, 59, 59, tzinfo=UTC), datetime(2026, 12, 1, 3, 0, tzinfo=UTC)),
])
def test_a_job_belongs_to_the_slot_it_was_enqueued_for(enqueued_at, slot):
    assert slot_of("0 3 * * *", enqueued_at) == slot


def test_slot_keys_name_the_schedule_and_the_minute():
    slot = datetime(2026, 12, 6, 4, 0, tzinfo=UTC)
    assert slot_key("weekly", slot) == "teachery:scheduled:weekly:2026-12-06T04:00Z"
    assert slot_key("nightly", slot) != slot_key("weekly", slot)
