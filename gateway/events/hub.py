"""The events of one gateway process: one publisher, one live fanout, durable group consumers."""

import re
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
import structlog
from prometheus_client import CollectorRegistry, Gauge
from redis.exceptions import RedisError

from gateway.errors import BadUserInput, UpstreamUnavailable, shown
from gateway.events import (
    EventConsumer,
    EventMetrics,
    EventPublisher,
    FanoutSubscription,
    StreamFanout,
    create_event_consumer,
    create_event_fanout,
    create_event_publisher,
)
from gateway.redis import create_redis
from gateway.settings import EventSettings

GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
ACK_CONSUMER = "gateway-ack"
BLOCKING_CONNECTIONS = 1_000


class EventHub:
    """Publishes this process's events and serves its live and durable subscribers.

    Live subscribers share one stream reader (Redis backend only); durable subscribers each
    read through a consumer group on a client whose socket timeout outlasts a blocking read.
    """

    def __init__(
        self,
        settings: EventSettings,
        publisher: EventPublisher,
        metrics: EventMetrics,
        *,
        blocking: "aioredis.Redis | None",
        namespace: str,
        registry: CollectorRegistry,
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self.metrics = metrics
        self._blocking = blocking
        self._namespace = namespace
        self._fanout: StreamFanout | None = None
        if blocking is not None:
            self._fanout = create_event_fanout(
                blocking,
                namespace,
                metrics=metrics,
                block_ms=settings.block_ms,
                queue_size=settings.fanout_queue_size,
            )
        live = Gauge(
            "qontract_gateway_events_live_subscribers",
            "Live event subscribers fed by this process.",
            registry=registry,
        )
        live.set_function(lambda: self._fanout.subscriber_count if self._fanout else 0)

    @classmethod
    def create(
        cls,
        settings: EventSettings,
        *,
        redis: "aioredis.Redis",
        redis_url: str,
        namespace: str,
        registry: CollectorRegistry,
        connect_timeout: float = 1.0,
    ) -> "EventHub":
        """The hub for `settings`: publishes on `redis` (or SNS), blocking reads on a new client."""
        blocking = None
        if settings.backend == "redis":
            blocking = create_redis(
                redis_url,
                socket_timeout=settings.block_ms / 1000 + 5,
                connect_timeout=connect_timeout,
                max_connections=BLOCKING_CONNECTIONS,
            )
        metrics = EventMetrics(registry)
        publisher = create_event_publisher(
            "disabled" if not settings.enabled else settings.backend,
            metrics=metrics,
            redis_client=redis,
            namespace=namespace,
            maxlen=settings.stream_maxlen,
            topic_arn=settings.sns_topic_arn,
            endpoint_url=settings.aws_endpoint_url,
            region_name=settings.aws_region,
        )
        return cls(
            settings,
            publisher,
            metrics,
            blocking=blocking,
            namespace=namespace,
            registry=registry,
        )

    async def start(self) -> None:
        """Start the live stream reader; if Redis is down, the first subscriber starts it."""
        if self._fanout is None:
            return
        try:
            await self._fanout.start()
        except (RedisError, OSError) as error:
            structlog.get_logger(__name__).warning(
                "event stream reader not started; Redis unreachable",
                error=repr(error),
            )

    @asynccontextmanager
    async def live(
        self,
        event_types: Iterable[str] | None,
        since: str | None,
    ) -> AsyncIterator[FanoutSubscription]:
        """A live subscription for the block: replay after `since`, then new events."""
        if self._fanout is None:
            raise UpstreamUnavailable(
                "live event subscriptions need the redis event backend",
                upstream="events",
            )
        async with self._fanout.subscribe(event_types=event_types, since=since) as subscription:
            yield subscription

    def durable(self, group: str, consumer: str) -> EventConsumer:
        """A consumer named `consumer` in consumer group `group` (made on first read)."""
        _check_name("group", group)
        _check_name("consumer", consumer)
        if self.settings.backend == "sns":
            return self._sqs_consumer(group)
        return create_event_consumer(
            "redis",
            metrics=self.metrics,
            redis_client=self._blocking,
            namespace=self._namespace,
            group=group,
            consumer=consumer,
            max_deliveries=self.settings.max_deliveries,
            block_ms=self.settings.block_ms,
            visibility_timeout_ms=int(self.settings.visibility_timeout * 1000),
            batch_size=self.settings.durable_batch_size,
        )

    async def acknowledge(self, group: str, ids: list[str]) -> int:
        """Settle deliveries of `group`; how many were still pending (malformed: BAD_USER_INPUT)."""
        consumer = self.durable(group, ACK_CONSUMER)
        try:
            return await consumer.ack(ids)
        finally:
            await consumer.close()

    async def close(self) -> None:
        """End every live subscription (reason `closed`), then release publisher and client."""
        if self._fanout is not None:
            await self._fanout.close()
        await self.publisher.close()
        if self._blocking is not None:
            await self._blocking.aclose()

    def _sqs_consumer(self, group: str) -> EventConsumer:
        if self.settings.sqs_queue_url is None:
            raise UpstreamUnavailable(
                "durable subscriptions on the sns backend need events.sqs_queue_url",
                upstream="events",
            )
        if group != self.settings.sqs_group:
            raise BadUserInput(
                f"the sns event backend has one consumer group, {self.settings.sqs_group!r}"
            )
        return create_event_consumer(
            "sns",
            metrics=self.metrics,
            queue_url=self.settings.sqs_queue_url,
            dead_letter_queue_url=self.settings.sqs_dead_letter_queue_url,
            endpoint_url=self.settings.aws_endpoint_url,
            region_name=self.settings.aws_region,
            max_deliveries=self.settings.max_deliveries,
            wait_time_seconds=1,
            visibility_timeout_seconds=max(1, round(self.settings.visibility_timeout)),
        )


def _check_name(what: str, name: str) -> None:
    if not GROUP_NAME.match(name):
        raise BadUserInput(
            f"{what} must be 1-100 letters, digits, '.', '_', ':' or '-', not {shown(name)}"
        )
