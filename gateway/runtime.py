"""What one gateway process holds: settings, Redis, metrics, auth, cache, limiter, events."""

from dataclasses import dataclass

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from gateway.auth import TokenVerifier
from gateway.cache import Cache, CacheMetrics
from gateway.events.hub import EventHub
from gateway.metrics import CLIENT_OPERATIONS, GatewayMetrics
from gateway.ratelimit import RateLimiter, RateLimitMetrics
from gateway.redis import create_redis
from gateway.settings import Settings
from gateway.tracing import configure as configure_tracing
from gateway.upstream import FetchSlots, UpstreamMetrics


@dataclass
class Runtime:
    """Long-lived parts shared by every request of one app instance.

    `redis` is the shared pool; `reserved_redis`, a small pool of its own for readiness and
    the rate limiter, so a busy shared pool never starves them.
    """

    settings: Settings
    redis: "aioredis.Redis"
    reserved_redis: "aioredis.Redis"
    metrics: GatewayMetrics
    verifier: TokenVerifier
    cache: Cache
    limiter: RateLimiter
    upstream_metrics: UpstreamMetrics
    events: EventHub
    fetch_slots: FetchSlots

    @classmethod
    def create(cls, settings: Settings) -> "Runtime":
        """Connect (lazily) to the configured Redis and build the shared parts on it."""
        if settings.redis.url is None:
            raise ValueError("the runtime needs a Redis URL; `qontract-gateway serve` starts one")
        configure_tracing(settings.tracing)
        registry = CollectorRegistry()
        options = settings.redis
        redis, reserved = (
            create_redis(
                settings.redis.url,
                socket_timeout=options.socket_timeout,
                connect_timeout=options.connect_timeout,
                max_connections=size,
                pool_timeout=options.pool_timeout,
            )
            for size in (options.max_connections, options.reserved_connections)
        )
        namespace = settings.redis.namespace
        secret = settings.auth.secret.get_secret_value() if settings.auth.secret else None
        return cls(
            settings=settings,
            redis=redis,
            reserved_redis=reserved,
            metrics=GatewayMetrics(
                registry, CLIENT_OPERATIONS | set(settings.metrics.operation_names)
            ),
            verifier=TokenVerifier(secret, settings.auth.revoked_subjects),
            cache=Cache(
                redis,
                namespace,
                CacheMetrics(registry),
                local_ttl=settings.cache.local_ttl,
                local_max_entries=settings.cache.local_max_entries,
                max_stale=settings.cache.max_stale,
                lease=settings.cache.lease,
                batch_concurrency=settings.limits.max_concurrent_fetches_per_request,
            ),
            limiter=RateLimiter(reserved, namespace, RateLimitMetrics(registry)),
            upstream_metrics=UpstreamMetrics(registry),
            events=EventHub.create(
                settings.events,
                redis=redis,
                redis_url=settings.redis.url,
                namespace=namespace,
                registry=registry,
                socket_timeout=options.socket_timeout,
                connect_timeout=options.connect_timeout,
            ),
            fetch_slots=FetchSlots(
                settings.limits.max_concurrent_fetches,
                settings.limits.max_concurrent_fetches_per_request,
            ),
        )

    async def start(self) -> None:
        """Start what runs in the background: the live event stream reader."""
        await self.events.start()

    async def aclose(self) -> None:
        """End event subscriptions, then close the Redis pools."""
        await self.events.close()
        await self.redis.aclose()
        await self.reserved_redis.aclose()
