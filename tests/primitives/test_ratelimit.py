"""The shared token bucket against a real Redis and an upstream that enforces its own limit."""

import asyncio
import time
import uuid

import pytest

from gateway.errors import Timeout, UpstreamRateLimited
from gateway.ratelimit import Bucket, BucketSpec
from gateway.upstream import UpstreamPath
from tests.emulators.base import UpstreamEmulator
from tests.primitives.conftest import Replica, ReplicaFactory
from tests.support.wait import async_wait_until

LIMIT, WINDOW, WINDOWS = 30, 3.0, 2


async def hammer(replica: Replica, until: float) -> None:
    """GET distinct items as fast as the bucket allows until the monotonic instant `until`."""
    while time.monotonic() < until:
        try:
            await replica.client.request(
                "items.get", "GET", UpstreamPath("/items/{}", uuid.uuid4().hex), deadline=until
            )
        except (UpstreamRateLimited, Timeout):
            return


async def test_three_replicas_cause_no_429_and_use_at_least_90_percent_of_the_limit(
    replicas: ReplicaFactory, emulator: UpstreamEmulator
) -> None:
    spec = BucketSpec.within(LIMIT, WINDOW)
    three = [replicas(spec=spec) for _ in range(3)]
    emulator.enforce_rate_limit(LIMIT, WINDOW)
    until = time.monotonic() + WINDOWS * WINDOW
    await asyncio.gather(*(hammer(r, until) for r in three for _ in range(4)))
    used = emulator.total_calls()
    assert emulator.rate_limited_calls == 0
    assert used >= 0.9 * LIMIT * WINDOWS, f"{used} requests in {WINDOWS} windows"


async def test_upstream_429_pauses_the_bucket_for_every_replica(
    replicas: ReplicaFactory, emulator: UpstreamEmulator
) -> None:
    first, second = replicas(), replicas()
    emulator.fail(429, times=1, retry_after=1)
    request = asyncio.ensure_future(
        first.client.request("items.get", "GET", UpstreamPath("/items/1"))
    )

    async def answered_429() -> bool:
        return emulator.total_calls() >= 1

    await async_wait_until(answered_429, what="the upstream to answer 429")
    with pytest.raises(UpstreamRateLimited):
        await second.limiter.acquire(first.client.account.bucket, time.monotonic() + 0.3)
    response = await request
    assert response.status_code == 200
    assert emulator.total_calls() == 2


async def test_caller_whose_deadline_is_before_the_next_token_is_refused_at_once(
    replicas: ReplicaFactory,
) -> None:
    replica = replicas()
    bucket = Bucket("emulated", "app-sre", "slow", BucketSpec(capacity=1, refill_per_second=0.5))
    await replica.limiter.acquire(bucket, time.monotonic() + 1)
    asked = time.monotonic()
    with pytest.raises(UpstreamRateLimited, match="after the caller's deadline"):
        await replica.limiter.acquire(bucket, asked + 0.5)
    assert time.monotonic() - asked < 0.25


async def test_caller_with_time_enough_waits_for_the_next_token(replicas: ReplicaFactory) -> None:
    replica = replicas()
    bucket = Bucket("emulated", "app-sre", "fast", BucketSpec(capacity=1, refill_per_second=5))
    await replica.limiter.acquire(bucket, time.monotonic() + 1)
    waited = await replica.limiter.acquire(bucket, time.monotonic() + 1)
    assert 0.1 <= waited < 0.6


def test_bucket_defaults_never_exceed_the_window() -> None:
    for requests, seconds, burst in ((20, 60, 1), (960, 60, 9), (5000, 3600, 50), (60, 60, 1)):
        spec = BucketSpec.within(requests, seconds, burst=burst)
        granted_in_window = spec.capacity + spec.refill_per_second * seconds
        assert granted_in_window <= requests
        assert spec.refill_per_second * seconds >= 0.9 * requests
