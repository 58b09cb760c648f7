"""Event test parts: a Redis client allowed to block, per-test metrics and stream keys."""

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from gateway.events.base import EventMetrics
from gateway.redis import create_redis
from gateway.redis_keys import StreamKeys, stream_keys


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator["aioredis.Redis"]:
    """A client whose socket timeout outlasts the short blocking reads the tests use."""
    client = create_redis(redis_url, socket_timeout=10.0)
    yield client
    await client.aclose()


@pytest.fixture
def registry() -> CollectorRegistry:
    """A registry of this test only."""
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> EventMetrics:
    """Event counters registered in this test's registry."""
    return EventMetrics(registry)


@pytest.fixture
def keys(namespace: str) -> StreamKeys:
    """The event stream keys of this test's namespace."""
    return stream_keys(namespace)


def counted(registry: CollectorRegistry, name: str, backend: str, event_type: str) -> float:
    """The value of counter `qontract_gateway_events_<name>` for one backend and event type."""
    value = registry.get_sample_value(
        f"qontract_gateway_events_{name}_total",
        {"backend": backend, "event_type": event_type},
    )
    return value or 0.0
