"""The web pool's breaker (domain/breaker.py): refuse at once after a failure, one probe at a time."""
from __future__ import annotations

from domain.breaker import Breaker


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_closed_lets_everyone_through():
    breaker = Breaker(cooldown=1.0, clock=Clock())
    assert all(breaker.admit() for _ in range(5)) and not breaker.is_open


def test_after_a_failure_everyone_is_refused_until_the_cooldown_then_one_probe_at_a_time():
    clock = Clock()
    breaker = Breaker(cooldown=1.0, clock=clock)
    breaker.failed("no connection")
    assert breaker.is_open and not breaker.admit() and breaker.last_error == "no connection"
    clock.now += 1.0
    assert breaker.admit()  # the probe
    assert not breaker.admit() and not breaker.admit()  # everyone else, while it is out
    breaker.failed("still down")
    assert not breaker.admit()
    clock.now += 1.0
    assert breaker.admit()
    breaker.succeeded()
    assert not breaker.is_open and breaker.admit() and breaker.admit()


def test_a_probe_that_proves_nothing_lets_the_next_one_try():
    clock = Clock()
    breaker = Breaker(cooldown=1.0, clock=clock)
    breaker.failed("x")
    clock.now += 2
    assert breaker.admit()
    breaker.done()
    assert breaker.admit() and breaker.is_open
