"""A token bucket per (system, account, tier) in Redis, shared by every replica and worker."""

import asyncio
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter, Histogram
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.errors import UpstreamRateLimited, UpstreamUnavailable
from gateway.redis import key

# KEYS: bucket hash, pause marker. ARGV: capacity, refill per ms, cost.
# Returns {granted (0/1), milliseconds to wait before asking again}.
_TAKE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then
  return {0, paused}
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local granted = 0
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
  granted = 1
else
  wait = math.max(1, math.ceil((cost - tokens) / rate))
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate) + 1000)
return {granted, wait}
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


SLACK_TIER_2 = BucketSpec.within(20, 60)
SLACK_TIER_3 = BucketSpec.within(50, 60)
SLACK_TIER_4 = BucketSpec.within(100, 60)
PAGERDUTY = BucketSpec.within(960, 60, burst=9)
GITHUB = BucketSpec.within(5000, 3600, burst=50)
JIRA = BucketSpec.within(60, 60)


class RateLimitMetrics:
    """Waits, wait time, pauses and refusals of the rate limiter, in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["system", "account", "tier"]
        self.waits = Counter(
            "qontract_gateway_ratelimit_waits_total",
            "Acquisitions that had to wait for a token", labels, registry=registry,
        )
        self.wait_seconds = Histogram(
            "qontract_gateway_ratelimit_wait_seconds",
            "Time spent waiting for a token", ["system", "tier"], registry=registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.rate_limited = Counter(
            "qontract_gateway_ratelimit_rate_limited_total",
            "Acquisitions refused because the wait exceeded the caller's deadline", labels,
            registry=registry,
        )
        self.pauses = Counter(
            "qontract_gateway_ratelimit_pauses_total",
            "Buckets paused after an upstream 429", labels, registry=registry,
        )


class RateLimiter:
    """Takes tokens from shared Redis buckets; waits up to the caller's deadline, then refuses."""

    def __init__(
        self, redis: "aioredis.Redis", namespace: str, metrics: RateLimitMetrics
    ) -> None:
        self._redis = redis
        self._namespace = namespace
        self._metrics = metrics
        self._take = redis.register_script(_TAKE)
        self._pause = redis.register_script(_PAUSE)

    def _keys(self, bucket: Bucket) -> list[str]:
        tag = f"{bucket.system}/{bucket.account}/{bucket.tier}"
        return [
            key(self._namespace, "ratelimit", tag, "bucket"),
            key(self._namespace, "ratelimit", tag, "pause"),
        ]

    async def acquire(self, bucket: Bucket, deadline: float) -> float:
        """Take one token, sleeping while none is free; `deadline` is a `time.monotonic()` instant.

        Returns the seconds waited. Raises `UpstreamRateLimited` as soon as the next token is
        known to come after the deadline, without waiting for nothing.
        """
        started = time.monotonic()
        labels = (bucket.system, bucket.account, bucket.tier)
        waited = False
        while True:
            granted, wait_ms = await self._run_take(bucket)
            now = time.monotonic()
            if granted:
                if waited:
                    self._metrics.waits.labels(*labels).inc()
                    self._metrics.wait_seconds.labels(bucket.system, bucket.tier).observe(
                        now - started
                    )
                return now - started
            wait = wait_ms / 1000.0
            if now + wait > deadline:
                self._metrics.rate_limited.labels(*labels).inc()
                raise UpstreamRateLimited(
                    f"{bucket.system} account {bucket.account!r}: rate budget ({bucket.tier}) "
                    f"spent; next request possible in {wait:.1f}s, after the caller's deadline",
                    retry_after=wait,
                )
            waited = True
            await asyncio.sleep(wait)

    async def pause(self, bucket: Bucket, retry_after: float) -> None:
        """Stop every replica from taking tokens from `bucket` for `retry_after` seconds."""
        self._metrics.pauses.labels(bucket.system, bucket.account, bucket.tier).inc()
        try:
            await self._pause(keys=self._keys(bucket)[1:], args=[max(1, int(retry_after * 1000))])
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise UpstreamUnavailable("shared rate limiter (Redis) unreachable") from exc

    async def _run_take(self, bucket: Bucket) -> tuple[bool, int]:
        rate_per_ms = bucket.spec.refill_per_second / 1000.0
        try:
            granted, wait_ms = await self._take(
                keys=self._keys(bucket), args=[bucket.spec.capacity, rate_per_ms, 1]
            )
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise UpstreamUnavailable("shared rate limiter (Redis) unreachable") from exc
        return bool(granted), int(wait_ms)
