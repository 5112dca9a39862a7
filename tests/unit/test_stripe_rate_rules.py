"""The rate limit's pure parts: its setting, how long a 429 makes a call wait, and the accounts' labels."""
import pytest
import stripe

from domain.settings import ConfigError, Settings
from workers.rate_limit import OTHER, PLATFORM, label
from workers.stripe_api import MAX_BACKOFF, MAX_RATE_LIMIT_WAIT, pause_after


def test_the_rate_setting_defaults_to_test_modes_limit_and_takes_any_positive_number():
    assert Settings().stripe_max_requests_per_second == 25
    assert Settings.from_env({}).stripe_max_requests_per_second == 25
    assert Settings.from_env({"STRIPE_MAX_REQUESTS_PER_SECOND": ""}).stripe_max_requests_per_second == 25
    assert Settings.from_env({"STRIPE_MAX_REQUESTS_PER_SECOND": "100"}).stripe_max_requests_per_second == 100
    assert Settings.from_env({"STRIPE_MAX_REQUESTS_PER_SECOND": " 2.5 "}).stripe_max_requests_per_second == 2.5


@pytest.mark.parametrize("value", ["0", "-5", "0.0", "fast", "nan", "inf", "1e999", "25/s", "٢٥"])
def test_a_rate_that_is_no_positive_number_is_refused_naming_the_variable(value):
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"STRIPE_MAX_REQUESTS_PER_SECOND": value})
    assert str(refused.value) == \
        f"STRIPE_MAX_REQUESTS_PER_SECOND must be a positive number (requests per second), got {value!r}"


def rate_limited(headers=None, code="rate_limit"):
    return stripe.RateLimitError("Too many requests", "{}", 429, {}, headers or {}, code)


def test_a_429_waits_what_its_retry_after_says_at_most_the_bounded_wait():
    assert pause_after(rate_limited({"Retry-After": "2"}), 1) == 2
    assert pause_after(rate_limited({"retry-after": "0.5"}), 3) == 0.5
    assert pause_after(rate_limited({"Retry-After": "86400"}), 1) == MAX_RATE_LIMIT_WAIT


@pytest.mark.parametrize("headers", [{}, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, {"Retry-After": "-1"}])
def test_without_a_usable_retry_after_a_429_backs_off_exponentially_with_jitter(headers):
    for attempt, most in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (9, MAX_BACKOFF)):
        pauses = [pause_after(rate_limited(headers), attempt) for _ in range(50)]
        assert all(most / 2 <= p <= most for p in pauses)
        assert len(set(pauses)) > 1


def test_labels_are_account_ids_the_platform_or_other():
    assert label(None) == label("") == PLATFORM
    assert label("acct_1Nv0FGQ9RKHgCVdK") == "acct_1Nv0FGQ9RKHgCVdK"
    assert label("acct_x\"} 1\nfake_metric") == label("cus_123") == label("platform") == OTHER
