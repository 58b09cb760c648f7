"""The upstream HTTP policy against an emulated upstream over real HTTP."""

import time

import pytest

from gateway.breaker import BreakerState
from gateway.errors import Timeout, UpstreamUnavailable
from gateway.upstream import UpstreamPath, UpstreamPolicy
from tests.emulators.base import UpstreamEmulator
from tests.primitives.conftest import ReplicaFactory
from tests.support.wait import async_wait_until

FAST_RETRY = UpstreamPolicy(backoff_initial=0.01, backoff_max=0.05)
BREAKER = UpstreamPolicy(max_attempts=1, failure_threshold=3, cool_down=0.5)


async def test_get_after_a_5xx_succeeds_with_two_upstream_calls(
    replicas: ReplicaFactory, emulator: UpstreamEmulator
) -> None:
    replica = replicas(policy=FAST_RETRY)
    emulator.fail(502, times=1)
    response = await replica.client.request("items.get", "GET", UpstreamPath("/items/1"))
    assert response.json() == {"id": "1"}
    assert emulator.total_calls("GET /items/1") == 2


async def test_post_is_not_retried(replicas: ReplicaFactory, emulator: UpstreamEmulator) -> None:
    replica = replicas(policy=FAST_RETRY)
    emulator.fail(503, times=1)
    with pytest.raises(UpstreamUnavailable, match="HTTP 503"):
        await replica.client.request(
            "items.create", "POST", UpstreamPath("/items"), json={"name": "x"}
        )
    assert emulator.total_calls("POST /items") == 1


async def test_slow_upstream_ends_in_timeout(
    replicas: ReplicaFactory, emulator: UpstreamEmulator
) -> None:
    replica = replicas(policy=UpstreamPolicy(max_attempts=1, read_timeout=0.2))
    emulator.slow(2.0, times=1)
    with pytest.raises(Timeout, match="timed out"):
        await replica.client.request("items.get", "GET", UpstreamPath("/items/1"))


async def test_breaker_opens_after_k_failures_and_then_fails_without_calling_upstream(
    replicas: ReplicaFactory, emulator: UpstreamEmulator
) -> None:
    replica = replicas(policy=BREAKER)
    emulator.fail(500, times=3)
    for _ in range(3):
        with pytest.raises(UpstreamUnavailable, match="HTTP 500"):
            await replica.client.request("items.get", "GET", UpstreamPath("/items/1"))
    with pytest.raises(UpstreamUnavailable, match="circuit open"):
        await replica.client.request("items.get", "GET", UpstreamPath("/items/1"))
    assert emulator.total_calls() == 3
    assert replica.client.breaker.state is BreakerState.OPEN
    gauge = replica.registry.get_sample_value(
        "qontract_gateway_upstream_breaker_state", {"system": "emulated", "account": "app-sre"}
    )
    assert gauge == BreakerState.OPEN


async def test_breaker_half_opens_after_cool_down_and_closes_on_a_successful_probe(
    replicas: ReplicaFactory, emulator: UpstreamEmulator
) -> None:
    replica = replicas(policy=BREAKER)
    emulator.fail(500, times=3)
    for _ in range(3):
        with pytest.raises(UpstreamUnavailable):
            await replica.client.request("items.get", "GET", UpstreamPath("/items/1"))
    opened = time.monotonic()

    async def cooled_down() -> bool:
        return time.monotonic() - opened > BREAKER.cool_down

    await async_wait_until(cooled_down, what="the breaker cool-down")
    response = await replica.client.request("items.get", "GET", UpstreamPath("/items/1"))
    assert response.status_code == 200
    assert replica.client.breaker.state is BreakerState.CLOSED
    assert emulator.total_calls() == 4


async def test_upstream_requests_are_counted_by_operation_and_status(
    replicas: ReplicaFactory, emulator: UpstreamEmulator
) -> None:
    replica = replicas(policy=FAST_RETRY)
    emulator.fail(500, times=1)
    await replica.client.request("items.get", "GET", UpstreamPath("/items/1"))
    labels = {"system": "emulated", "account": "app-sre", "operation": "items.get"}
    count = replica.registry.get_sample_value
    assert count("qontract_gateway_upstream_requests_total", {**labels, "status": "500"}) == 1
    assert count("qontract_gateway_upstream_requests_total", {**labels, "status": "200"}) == 1
