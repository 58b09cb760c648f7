"""The notifier process: a consumer group reader posting to Slack, with health and metrics."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.events import EventConsumer, consume_batches, create_event_consumer
from gateway.health import HealthEndpoints
from gateway.notifier.delivery import Notifier, NotifierMetrics
from gateway.redis import create_redis
from gateway.registry import Sources
from gateway.runtime import Runtime
from gateway.settings import Settings
from resolvers.systems import SYSTEMS

DRY_RUN_SUFFIX = "-dry-run"
STOP_TIMEOUT = 10.0


def group_name(settings: Settings, dry_run: bool) -> str:
    """The consumer group: a dry run reads with its own, so the real group's place is kept."""
    group = settings.notifier.group
    return group[: 100 - len(DRY_RUN_SUFFIX)] + DRY_RUN_SUFFIX if dry_run else group


def notifier_app(settings: Settings, *, dry_run: bool = False) -> Starlette:
    """The notifier: reads events in its consumer group while it serves health and metrics."""
    if settings.redis.url is None:
        raise ValueError("the notifier needs the gateway's Redis (redis.url)")
    runtime = Runtime.create(settings)
    health = HealthEndpoints(runtime)
    metrics = NotifierMetrics(runtime.metrics.registry)
    options = settings.notifier
    blocking = create_redis(
        settings.redis.url,
        socket_timeout=settings.events.block_ms / 1000 + settings.redis.socket_timeout,
        connect_timeout=settings.redis.connect_timeout,
        max_connections=options.concurrency + 1,
    )
    group = group_name(settings, dry_run)
    consumers: list[EventConsumer] = [
        create_event_consumer(
            "redis",
            metrics=runtime.events.metrics,
            redis_client=blocking,
            namespace=settings.redis.namespace,
            group=group,
            consumer=f"{options.consumer}-{n}",
            max_deliveries=options.max_deliveries,
            block_ms=settings.events.block_ms,
            visibility_timeout_ms=int(options.retry_after * 1000),
            batch_size=options.batch_size,
            start_id="$" if options.start_from == "new" else "0",
        )
        for n in range(options.concurrency)
    ]
    tasks: list[asyncio.Task[None]] = []

    async def readyz(request: Request) -> Response:
        if not tasks or any(task.done() for task in tasks):
            return JSONResponse(
                {"status": "unavailable", "reason": "event reader not running"}, status_code=503
            )
        return await health.readyz(request)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        sources = Sources.create(runtime, SYSTEMS)
        await sources.start()
        notifier = Notifier(
            sources,
            runtime.redis,
            settings.redis.namespace,
            options.channels,
            metrics,
            group=group,
            max_deliveries=options.max_deliveries,
            sent_ttl=options.sent_ttl,
            lines_per_message=options.lines_per_message,
            dry_run=dry_run,
        )
        stop = asyncio.Event()
        tasks.extend(
            asyncio.create_task(
                consume_batches(consumer, notifier.deliver, stop, options.batch_size)
            )
            for consumer in consumers
        )
        structlog.get_logger(__name__).info(
            "notifier started", group=group, consumer=options.consumer, dry_run=dry_run
        )
        try:
            yield
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.gather(*tasks), STOP_TIMEOUT)
            for consumer in consumers:
                await consumer.close()
            await sources.aclose()
            await blocking.aclose()
            await runtime.aclose()

    return Starlette(
        routes=[
            Route("/healthz", health.healthz),
            Route("/readyz", readyz),
            Route("/metrics", health.metrics),
        ],
        lifespan=lifespan,
    )
