"""The one Redis connection pool per process, and how keys are named."""

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


def create_redis(
    url: str,
    *,
    socket_timeout: float = 5.0,
    connect_timeout: float = 1.0,
    max_connections: int = 200,
) -> "aioredis.Redis":
    """An asyncio Redis client with explicit timeouts, so a dead Redis fails fast, never hangs.

    Commands that block on the server (XREAD BLOCK, BLPOP) must pass a `socket_timeout` larger
    than their block time, or use a client made with a larger one.
    """
    return aioredis.Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        max_connections=max_connections,
        health_check_interval=30,
        retry=Retry(NoBackoff(), retries=1),
        decode_responses=False,
    )


def key(namespace: str, area: str, tag: str, *parts: str) -> str:
    """A key `namespace:area:{tag}:part...`.

    Keys that one Lua script or MULTI touches together share the `tag`, so they land in one
    Redis Cluster slot; different tags spread over the cluster.
    """
    return ":".join((namespace, area, "{" + tag + "}", *parts))
