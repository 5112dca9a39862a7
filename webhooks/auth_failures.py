"""Failed authentication, counted per client in Redis (every web process shares the count).

A client whose tokens were wrong more often than AUTH_FAILURE_LIMIT allows (default 30 a minute) has
its further wrong tokens answered 429 with Retry-After until its window ends; the right token still
passes, so a script with a stale token in the same office never locks the real admins out. (Tokens are
long random secrets: the limit bounds the load and the noise of guessing; keep ADMIN_TOKEN long.)
The count uses the `limits` library's fixed window. Redis down: nothing is counted and
nobody is refused for it (the request then meets Redis's own 503 where it needs Redis).
"""
from __future__ import annotations

import contextlib
import math
import time

import redis
from flask import jsonify
from limits import parse
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter

from webhooks.errors import refused

NAMESPACE = "teachery:auth-failures"


def forget_all(client: redis.Redis) -> None:
    """Clear every client's count (tests, or an operator after an incident)."""
    keys = list(client.scan_iter(match=NAMESPACE + ":*"))
    if keys:
        client.delete(*keys)


class AuthFailures:
    def __init__(self, client: redis.Redis, limit: str):
        self.limit = parse(limit)
        self.limiter = FixedWindowRateLimiter(
            RedisStorage("redis://", connection_pool=client.connection_pool, key_prefix=NAMESPACE))

    def refuse(self, who: str | None, reason: str) -> int:
        """A wrong token from `who`: counted, and logged once as refused (401); or, when `who` failed too
        often lately, not counted and logged as a 429. Returns the seconds to wait (0: answer 401)."""
        wait = self._blocked_for(who)
        if wait:
            refused(429, "too many failed sign-ins from this client", client=who)
            return wait
        refused(401, reason, client=who)
        with contextlib.suppress(redis.RedisError):
            self.limiter.hit(self.limit, who or "unknown")
        return 0

    def _blocked_for(self, who: str | None) -> int:
        """Seconds until `who` may try again (0: it may now)."""
        try:
            if self.limiter.test(self.limit, who or "unknown"):
                return 0
            reset_at, _left = self.limiter.get_window_stats(self.limit, who or "unknown")
        except redis.RedisError:
            return 0
        return max(1, math.ceil(reset_at - time.time()))

    @staticmethod
    def refusal(wait: int):
        answer = jsonify({"error": f"too many failed sign-ins from this client: retry in {wait} s"})
        return answer, 429, {"Retry-After": str(wait)}
