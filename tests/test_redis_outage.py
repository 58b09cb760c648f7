"""Redis stops while the gateway runs: readiness and GraphQL say so at once, and both recover."""

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.gateway import gateway_settings, start_gateway
from tests.support.redis_server import PrivateRedis
from tests.support.server_thread import ServerThread
from tests.support.wait import wait_until

QUERY = {"query": "{ gateway_info_v1 { redis_version } }"}


@pytest.fixture
def own_redis() -> Iterator[PrivateRedis]:
    with PrivateRedis() as server:
        yield server


@pytest.fixture
def gateway_on_own_redis(own_redis: PrivateRedis, namespace: str) -> Iterator[ServerThread]:
    server = start_gateway(gateway_settings(own_redis.url, namespace))
    yield server
    server.stop()


def test_redis_outage_turns_readyz_503_and_graphql_coded_then_recovers(
    own_redis: PrivateRedis, gateway_on_own_redis: ServerThread
) -> None:
    url = gateway_on_own_redis.url
    assert httpx.get(f"{url}/readyz").status_code == 200

    own_redis.stop()

    ready = httpx.get(f"{url}/readyz", timeout=10)
    assert ready.status_code == 503
    assert ready.json()["reason"].startswith("redis unreachable")
    started = time.monotonic()
    response = httpx.post(f"{url}/graphql", json=QUERY, timeout=10)
    assert time.monotonic() - started < 5, "GraphQL must fail fast, not hang, with Redis down"
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert error["extensions"]["upstream"] == "redis"
    assert httpx.get(f"{url}/healthz").status_code == 200

    own_redis.start()

    wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200, 10, "readyz back to 200")
    wait_until(
        lambda: (
            "data" in httpx.post(f"{url}/graphql", json=QUERY).json()
            and httpx.post(f"{url}/graphql", json=QUERY).json()["data"] is not None
        ),
        10,
        "GraphQL answering again",
    )
