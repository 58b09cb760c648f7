"""Real parts for the primitives: an upstream emulator over HTTP and gateway "replicas" on Redis."""

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.cache import Cache, CacheMetrics
from gateway.ratelimit import Bucket, BucketSpec, RateLimiter, RateLimitMetrics
from gateway.redis import create_redis
from gateway.upstream import UpstreamAccount, UpstreamClient, UpstreamMetrics, UpstreamPolicy
from tests.emulators.base import UpstreamEmulator
from tests.support.server_thread import ServerThread

SECRET = "xoxb-s3cr3t-token-never-shown"
GENEROUS = BucketSpec(capacity=1000, refill_per_second=1000)


async def _item(request: Request) -> JSONResponse:
    return JSONResponse({"id": request.path_params["ident"]})


async def _empty(request: Request) -> JSONResponse:
    return JSONResponse([])


async def _create(request: Request) -> JSONResponse:
    return JSONResponse({"created": True}, status_code=201)


@pytest.fixture(scope="module")
def upstream_server() -> Iterator[tuple[UpstreamEmulator, str]]:
    """One emulated upstream API per test module, served over real HTTP."""
    emulator = UpstreamEmulator(
        [
            Route("/items/{ident}", _item),
            Route("/empty", _empty),
            Route("/items", _create, methods=["POST"]),
        ]
    )
    with ServerThread(emulator.app) as server:
        yield emulator, server.url


@pytest.fixture
def emulator(upstream_server: tuple[UpstreamEmulator, str]) -> UpstreamEmulator:
    """The module's emulator with counters, faults and limits forgotten."""
    upstream_server[0].reset()
    return upstream_server[0]


@dataclass
class Replica:
    """What one gateway process holds: its own Redis client, cache, limiter and upstream client."""

    redis: Redis
    cache: Cache
    limiter: RateLimiter
    client: UpstreamClient
    registry: CollectorRegistry


ReplicaFactory = Callable[..., Replica]


@pytest.fixture
async def replicas(
    redis_url: str, namespace: str, upstream_server: tuple[UpstreamEmulator, str]
) -> AsyncIterator[ReplicaFactory]:
    """Build independent replicas sharing one Redis namespace; all are closed after the test."""
    made: list[Replica] = []

    def make(
        spec: BucketSpec = GENEROUS,
        policy: UpstreamPolicy | None = None,
        url: str = redis_url,
        local_ttl: float = 0.0,
        max_stale: float = 3600.0,
        lease: float = 5.0,
    ) -> Replica:
        registry = CollectorRegistry()
        redis = create_redis(url)
        limiter = RateLimiter(redis, namespace, RateLimitMetrics(registry))
        account = UpstreamAccount(
            system="emulated",
            name="app-sre",
            base_url=upstream_server[1],
            bucket=Bucket("emulated", "app-sre", "default", spec),
            headers={"Authorization": f"Bearer {SECRET}"},
        )
        client = UpstreamClient(account, limiter, UpstreamMetrics(registry), policy)
        cache = Cache(
            redis,
            namespace,
            CacheMetrics(registry),
            local_ttl=local_ttl,
            max_stale=max_stale,
            lease=lease,
        )
        replica = Replica(redis, cache, limiter, client, registry)
        made.append(replica)
        return replica

    yield make
    for replica in made:
        await replica.client.aclose()
        await replica.redis.aclose()
