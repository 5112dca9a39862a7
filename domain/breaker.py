"""A small circuit breaker: after a failure, callers are refused at once for a short while instead of
each waiting for a server that is down; then one caller at a time probes whether it is back."""
from __future__ import annotations

import threading
import time


class Breaker:
    """Closed: everyone passes. Open (after a failure): refused until `cooldown` seconds have passed,
    then one caller at a time passes as a probe; the probe's success closes it, its failure re-opens it."""

    def __init__(self, cooldown: float = 1.0, clock=time.monotonic):
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._open_until: float | None = None  # None: closed
        self._probing = False
        self.last_error = ""

    @property
    def is_open(self) -> bool:
        return self._open_until is not None

    def admit(self) -> bool:
        """True when the caller may go ahead (a probe when the breaker is open); False: refuse it now."""
        with self._lock:
            if self._open_until is None:
                return True
            if self._probing or self._clock() < self._open_until:
                return False
            self._probing = True
            return True

    def succeeded(self) -> None:
        with self._lock:
            self._open_until, self._probing = None, False

    def failed(self, error: str) -> None:
        with self._lock:
            self._open_until, self._probing = self._clock() + self.cooldown, False
            self.last_error = error

    def done(self) -> None:
        """The caller neither proved nor disproved anything (say it was interrupted): let another probe."""
        with self._lock:
            self._probing = False
