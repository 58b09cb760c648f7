"""The Redis connection pools of a process (keys are named in `gateway.redis_keys`)."""

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError


def create_redis(
    url: str,
    *,
    socket_timeout: float = 1.0,
    connect_timeout: float = 1.0,
    max_connections: int = 200,
    pool_timeout: float = 1.0,
) -> "aioredis.Redis":
    """An asyncio Redis client whose every wait is bounded, so a dead or hung Redis fails fast.

    When all `max_connections` are in use, a command waits up to `pool_timeout` for one, then
    fails (ConnectionError). A dropped connection is retried once on a new one; a timeout is
    not retried (a hung server would only double the wait). Commands that block on the server
    (XREAD BLOCK, BLPOP) need a client whose `socket_timeout` is longer than their block time.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_timeout,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        health_check_interval=30,
        retry=Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,)),
        decode_responses=False,
    )
    return aioredis.Redis.from_pool(pool)
