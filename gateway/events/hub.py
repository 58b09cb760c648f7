"""The events of one gateway process: one publisher, one live fanout, durable group consumers."""

import contextlib
import re
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
import structlog
from prometheus_client import CollectorRegistry, Gauge
from redis.exceptions import RedisError

from gateway.errors import BadUserInput, LimitExceeded, UpstreamUnavailable, shown
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
from gateway.events.redis_streams import acknowledge
from gateway.redis import create_redis
from gateway.redis_keys import stream_keys
from gateway.settings import EventSettings

GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
# The live fanout's reader and a replay, besides one connection per durable subscription.
FANOUT_CONNECTIONS = 2


class EventHub:
    """Publishes this process's events and serves its live and durable subscribers.

    Live subscribers share one stream reader (Redis backend only); durable subscribers each
    read through a consumer group on a client whose socket timeout outlasts a blocking read,
    at most `max_durable_subscriptions` of them at once, one pooled connection each.
    """

    def __init__(
        self,
        settings: EventSettings,
        publisher: EventPublisher,
        metrics: EventMetrics,
        *,
        shared: "aioredis.Redis",
        blocking: "aioredis.Redis | None",
        namespace: str,
        registry: CollectorRegistry,
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self.metrics = metrics
        self._shared = shared
        self._blocking = blocking
        self._namespace = namespace
        self._durable_open = 0
        self._fanout: StreamFanout | None = None
        if blocking is not None:
            self._fanout = create_event_fanout(
                blocking,
                namespace,
                metrics=metrics,
                block_ms=settings.block_ms,
                queue_size=settings.fanout_queue_size,
                outage_grace=settings.outage_grace,
            )
        live = Gauge(
            "qontract_gateway_events_live_subscribers",
            "Live event subscribers fed by this process.",
            registry=registry,
        )
        live.set_function(lambda: self._fanout.subscriber_count if self._fanout else 0)
        durable = Gauge(
            "qontract_gateway_events_durable_subscribers",
            "Durable event subscriptions open in this process.",
            registry=registry,
        )
        durable.set_function(lambda: self._durable_open)
        self._dead_letters = Gauge(
            "qontract_gateway_events_dead_letters",
            "Entries in the dead-letter stream (redis backend), read by the periodic sweep.",
            registry=registry,
        )
        self._group_lag = Gauge(
            "qontract_gateway_events_group_lag_max",
            "Stream entries not yet delivered to the consumer group furthest behind.",
            registry=registry,
        )
        self._group_pending = Gauge(
            "qontract_gateway_events_group_pending",
            "Deliveries awaiting acknowledgement, summed over consumer groups.",
            registry=registry,
        )

    @classmethod
    def create(
        cls,
        settings: EventSettings,
        *,
        redis: "aioredis.Redis",
        redis_url: str,
        namespace: str,
        registry: CollectorRegistry,
        socket_timeout: float = 1.0,
        connect_timeout: float = 1.0,
    ) -> "EventHub":
        """The hub for `settings`: publishes on `redis` (or SNS), blocking reads on a new pool.

        A blocking read may take `block_ms` plus the usual `socket_timeout` before it fails.
        """
        blocking = None
        if settings.backend == "redis":
            blocking = create_redis(
                redis_url,
                socket_timeout=settings.block_ms / 1000 + socket_timeout,
                connect_timeout=connect_timeout,
                max_connections=settings.max_durable_subscriptions + FANOUT_CONNECTIONS,
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
            shared=redis,
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

    async def observe_backlog(self) -> None:
        """Read the dead letters and the consumer groups' backlog into gauges (redis backend).

        Group names are caller-chosen, so the gauges aggregate over groups instead of
        labelling by group. A group whose lag Redis cannot tell (after trimming) counts as 0.
        """
        if self.settings.backend != "redis":
            return
        keys = stream_keys(self._namespace)
        async with self._shared.pipeline(transaction=False) as pipe:
            pipe.xlen(keys.dead_letter)
            pipe.exists(keys.stream)
            dead_letters, stream_exists = await pipe.execute()
        groups = await self._shared.xinfo_groups(keys.stream) if stream_exists else []
        self._dead_letters.set(dead_letters)
        self._group_lag.set(max((group.get("lag") or 0 for group in groups), default=0))
        self._group_pending.set(sum(group["pending"] for group in groups))

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

    @asynccontextmanager
    async def durable(self, group: str, consumer: str) -> AsyncIterator[EventConsumer]:
        """For the block, a consumer `consumer` in group `group` (made on first read).

        LIMIT_EXCEEDED when this process already serves `max_durable_subscriptions`.
        """
        _check_name("group", group)
        _check_name("consumer", consumer)
        limit = self.settings.max_durable_subscriptions
        if self._durable_open >= limit:
            raise LimitExceeded(
                f"this gateway process serves at most {limit} durable subscriptions; "
                "retry later or on another replica",
                limit="events.max_durable_subscriptions",
            )
        reader = self._consumer(group, consumer)
        self._durable_open += 1
        try:
            yield reader
        finally:
            self._durable_open -= 1
            with contextlib.suppress(Exception):
                await reader.close()

    def _consumer(self, group: str, consumer: str) -> EventConsumer:
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
        _check_name("group", group)
        if len(ids) > self.settings.max_ack_ids:
            raise BadUserInput(
                f"at most {self.settings.max_ack_ids} ids per acknowledgement "
                f"(events.max_ack_ids), not {len(ids)}"
            )
        if self.settings.backend == "redis":
            keys = stream_keys(self._namespace)
            return await acknowledge(self._shared, keys, group, ids, self.metrics)
        consumer = self._sqs_consumer(group)
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
