"""Stripe's request rate per account, shared by every process (web, workers, reconciliation, CLI)
through Redis.

Stripe limits each account to a request rate (live mode about 100 reads/s, test mode 25) and answers
429 beyond it. Each account (a connected `acct_…`, or the platform's own) has one bucket in Redis,
kept as GCRA's "theoretical arrival time" (TAT): a request *reserves* the next slot and is told how
long to wait for it, in one round trip (a Lua script, registered once; redis-py sends it by SHA).
The burst is one second of the rate. Slots are handed out in order, so no caller starves, and the
script counts the account's requests and waits for GET /metrics in the same round trip.

A 429 from Stripe pushes the bucket's TAT past the moment Stripe said to come back (`block`): every
process then waits until that moment, and resumes at the rate with an empty bucket (no burst).

Redis down: throttling is best effort, never a reason for a Stripe call to fail. The limiter then
lets calls through unthrottled (a 429 is still waited out by the caller), logs a warning at most once
a minute, and asks Redis again only every few seconds (a breaker), so a Redis that hangs costs one
timeout per few seconds, not one per call.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import redis
import structlog

from domain.breaker import Breaker
from domain.ids import is_account_id

log = structlog.get_logger(__name__)

PREFIX = "teachery:stripe-rate"
REQUESTS_KEY = f"{PREFIX}:requests"  # hash: account label → requests sent
RATE_LIMITED_KEY = f"{PREFIX}:rate-limited"  # hash: account label → 429s received
WAIT_KEY = f"{PREFIX}:wait-us"  # hash: account label → microseconds spent waiting for the limit
PLATFORM = "platform"  # the label of the platform's own account
OTHER = "other"  # the label of a value that is no account id (so a hostile one creates no label)
WARN_EVERY = 60.0  # seconds between two "Redis unreachable" warnings of one process
REDIS_COOLDOWN = 5.0  # seconds without asking Redis after it failed

# KEYS: bucket, requests, waits. ARGV: interval µs, burst (requests), most µs the caller will wait,
# µs the caller waits anyway (a 429 it is waiting out), account label.
# Answers {1, µs to wait} with the slot taken and counted, or {0, µs} when that is over the most.
RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('HGET', KEYS[1], 'tat') or now)
if tat < now then tat = now end
local new_tat = tat + interval
local wait = new_tat - burst * interval - now
if wait < 0 then wait = 0 end
if wait > tonumber(ARGV[3]) then return {0, wait} end
redis.call('HSET', KEYS[1], 'tat', string.format('%.0f', new_tat))
redis.call('PEXPIRE', KEYS[1], math.ceil((new_tat - now) / 1000) + 1000)
redis.call('HINCRBY', KEYS[2], ARGV[5], 1)
local counted = math.max(wait, tonumber(ARGV[4]))
if counted > 0 then redis.call('HINCRBY', KEYS[3], ARGV[5], string.format('%.0f', counted)) end
return {1, wait}
"""

# KEYS: bucket, rate-limited. ARGV: interval µs, burst, µs to block (0: count only), account label.
# The bucket is left empty at now + block: callers resume then at the rate, without a burst.
BLOCK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('HINCRBY', KEYS[2], ARGV[4], 1)
local block = tonumber(ARGV[3])
if block <= 0 then return 0 end
local interval = tonumber(ARGV[1])
local resume = now + block + (tonumber(ARGV[2]) - 1) * interval
local tat = tonumber(redis.call('HGET', KEYS[1], 'tat') or 0)
if resume > tat then
  redis.call('HSET', KEYS[1], 'tat', string.format('%.0f', resume))
  redis.call('PEXPIRE', KEYS[1], math.ceil((resume - now) / 1000) + 1000)
end
return 1
"""


def label(account: str | None) -> str:
    """The bucket and metrics label of an account: its id, `platform`, or `other` for what is no id."""
    if not account:
        return PLATFORM
    return account if is_account_id(account) else OTHER


class RateLimiter:
    """Per-account request slots for Stripe's API, shared through Redis (see the module's docstring)."""

    def __init__(self, client: redis.Redis, rate: float, *, redis_cooldown: float = REDIS_COOLDOWN,
                 clock=time.monotonic):
        if not rate > 0:
            raise ValueError(f"the rate must be a positive number of requests per second, got {rate!r}")
        self.rate = rate
        self.interval_us = 1_000_000 / rate
        self.burst = max(1.0, rate)  # one second of the rate, and at least one request
        self._redis = client
        self._reserve = client.register_script(RESERVE)
        self._block = client.register_script(BLOCK)
        self._clock = clock
        self._breaker = Breaker(cooldown=redis_cooldown, clock=clock)
        self._lock = threading.Lock()
        self._warned_at: float | None = None

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self.rate!r})"

    def reserve(self, account: str | None, *, most: float, pausing: float = 0.0) -> float | None:
        """Take the account's next slot: the seconds to wait before sending (0: at once); None when that
        wait would be over `most` seconds (no slot taken). `pausing`: what the caller waits anyway (a 429),
        counted as waiting. Redis unreachable: 0, unthrottled."""
        name = label(account)
        result = self._call(self._reserve, [f"{PREFIX}:bucket:{name}", REQUESTS_KEY, WAIT_KEY],
                            [self.interval_us, self.burst, max(0.0, most) * 1e6, pausing * 1e6, name])
        if result is None:
            return 0.0
        taken, wait_us = result
        return int(wait_us) / 1e6 if taken else None

    def block(self, account: str | None, seconds: float, *, shared: bool = True) -> None:
        """A 429 for this account: count it and, when `shared`, make every process wait `seconds`."""
        name = label(account)
        self._call(self._block, [f"{PREFIX}:bucket:{name}", RATE_LIMITED_KEY],
                   [self.interval_us, self.burst, seconds * 1e6 if shared else 0, name])

    def close(self) -> None:
        self._redis.close()

    def _call(self, script, keys, args):
        if not self._breaker.admit():
            return None
        try:
            result = script(keys=keys, args=args)
        except redis.RedisError as exc:
            self._breaker.failed(str(exc))
            self._warn(exc)
            return None
        self._breaker.succeeded()
        return result

    def _warn(self, error: Exception) -> None:
        with self._lock:
            now = self._clock()
            if self._warned_at is not None and now - self._warned_at < WARN_EVERY:
                return
            self._warned_at = now
        log.warning("Redis unreachable: Stripe calls go unthrottled until it is back",
                    error=" ".join(str(error).split()) or type(error).__name__)


@dataclass(frozen=True)
class AccountCounts:
    requests: int = 0
    rate_limited: int = 0
    wait_seconds: float = 0.0


def read_counts(client: redis.Redis) -> dict[str, AccountCounts]:
    """The counters of every account we called, by label, as the limiter's scripts keep them."""
    with client.pipeline(transaction=False) as pipe:
        for key in (REQUESTS_KEY, RATE_LIMITED_KEY, WAIT_KEY):
            pipe.hgetall(key)
        requests, limited, waits = ({_text(k): int(v) for k, v in found.items()} for found in pipe.execute())
    return {name: AccountCounts(requests.get(name, 0), limited.get(name, 0), waits.get(name, 0) / 1e6)
            for name in sorted({*requests, *limited, *waits})}


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value
