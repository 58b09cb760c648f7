"""A token bucket per (system, account, tier) in Redis, shared by every replica and worker."""

import asyncio
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter, Histogram
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.errors import UpstreamRateLimited, redis_unavailable
from gateway.redis_keys import RateKeys, tag

# GCRA form of a token bucket. KEYS: theoretical arrival time (ms), pause marker.
# ARGV: ms between tokens, burst tolerance ms, longest wait the caller accepts (ms).
# Returns {reserved (0/1), ms until the reserved (or next possible) slot}.
_TAKE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local slot = now
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then
  slot = now + paused
end
local tat = tonumber(redis.call('GET', KEYS[1])) or 0
slot = math.max(slot, tat - tolerance)
local wait = slot - now
if wait > max_wait then
  return {0, wait}
end
local next_tat = math.max(tat, slot) + interval
redis.call('SET', KEYS[1], tostring(next_tat), 'PX', math.ceil(next_tat - now + 1000))
return {1, math.ceil(wait)}
"""

# KEYS: pause marker. ARGV: milliseconds. A shorter pause never cuts a longer one.
_PAUSE = """
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 1
"""


@dataclass(frozen=True)
class BucketSpec:
    """Capacity (burst) and refill rate of one token bucket."""

    capacity: float
    refill_per_second: float

    @classmethod
    def within(
        cls, requests: int, per_seconds: float, burst: int = 1, headroom: float = 0.03
    ) -> "BucketSpec":
        """A bucket that never grants more than `requests * (1 - headroom)` in any sliding window.

        A token bucket grants at most `capacity + rate * window` in a window, so the burst is
        taken out of the refill: `rate = (usable - burst) / window`. The long-run share used is
        `(usable - burst) / requests`, which is >= 90 % while `burst <= 7 %` of the window.
        """
        usable = requests * (1.0 - headroom)
        if burst >= usable:
            raise ValueError("burst must be smaller than the requests the window allows")
        return cls(capacity=float(burst), refill_per_second=(usable - burst) / per_seconds)


@dataclass(frozen=True)
class Bucket:
    """One shared rate budget: an upstream system, an account name (never a secret), a tier."""

    system: str
    account: str
    tier: str
    spec: BucketSpec


class RateLimitMetrics:
    """Waits, wait time, pauses and refusals of the rate limiter, in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["system", "account", "tier"]
        self.waits = Counter(
            "qontract_gateway_ratelimit_waits_total",
            "Acquisitions that had to wait for a token",
            labels,
            registry=registry,
        )
        self.wait_seconds = Histogram(
            "qontract_gateway_ratelimit_wait_seconds",
            "Time spent waiting for a token",
            ["system", "tier"],
            registry=registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.rate_limited = Counter(
            "qontract_gateway_ratelimit_rate_limited_total",
            "Acquisitions refused because the wait exceeded the caller's deadline",
            labels,
            registry=registry,
        )
        self.pauses = Counter(
            "qontract_gateway_ratelimit_pauses_total",
            "Buckets paused after an upstream 429",
            labels,
            registry=registry,
        )


class RateLimiter:
    """Takes tokens from shared Redis buckets; waits up to the caller's deadline, then refuses."""

    def __init__(self, redis: "aioredis.Redis", namespace: str, metrics: RateLimitMetrics) -> None:
        self._redis = redis
        self._names = RateKeys(namespace)
        self._metrics = metrics
        self._take = redis.register_script(_TAKE)
        self._pause = redis.register_script(_PAUSE)

    def _keys(self, bucket: Bucket) -> list[str]:
        shared = tag(bucket.system, bucket.account, bucket.tier)
        return [self._names.tat(shared), self._names.pause(shared)]

    async def acquire(self, bucket: Bucket, deadline: float) -> float:
        """Reserve the next token and sleep until it is due; `deadline` is a monotonic instant.

        One script call per acquisition: the token is reserved on a shared timeline, so sleepers
        neither race each other nor lose refill while they wake up. Returns the seconds waited.
        Raises `UpstreamRateLimited` at once when the next token comes after the deadline.
        """
        labels = (bucket.system, bucket.account, bucket.tier)
        reserved, wait_ms = await self._run_take(bucket, deadline - time.monotonic())
        wait = wait_ms / 1000.0
        if not reserved:
            self._metrics.rate_limited.labels(*labels).inc()
            raise UpstreamRateLimited(
                f"{bucket.system} account {bucket.account!r}: rate budget ({bucket.tier}) "
                f"spent; next request possible in {wait:.1f}s, after the caller's deadline",
                retry_after=wait,
            )
        if wait > 0:
            self._metrics.waits.labels(*labels).inc()
            self._metrics.wait_seconds.labels(bucket.system, bucket.tier).observe(wait)
            await asyncio.sleep(wait)
        return wait

    async def pause(self, bucket: Bucket, retry_after: float) -> None:
        """Stop every replica from taking tokens from `bucket` for `retry_after` seconds."""
        self._metrics.pauses.labels(bucket.system, bucket.account, bucket.tier).inc()
        try:
            await self._pause(keys=self._keys(bucket)[1:], args=[max(1, int(retry_after * 1000))])
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise redis_unavailable(exc, "shared rate limiter") from exc

    async def _run_take(self, bucket: Bucket, max_wait: float) -> tuple[bool, int]:
        interval_ms = 1000.0 / bucket.spec.refill_per_second
        tolerance_ms = (bucket.spec.capacity - 1) * interval_ms
        try:
            granted, wait_ms = await self._take(
                keys=self._keys(bucket), args=[interval_ms, tolerance_ms, max(0, max_wait * 1000)]
            )
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise redis_unavailable(exc, "shared rate limiter") from exc
        return bool(granted), int(wait_ms)
