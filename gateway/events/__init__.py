"""Events: publish what the gateway did, consume it durably or follow it live.

Callers use the factories here and the protocols; they never import a concrete backend.
"""

from typing import Any, Literal

import redis.asyncio as aioredis

from gateway.events.base import (
    BatchHandler,
    EventConsumer,
    EventMetrics,
    EventPublisher,
    Handler,
    ReceivedEvent,
    consume_batches,
)
from gateway.events.disabled import DisabledPublisher
from gateway.events.model import Event
from gateway.events.redis_fanout import FanoutSubscription, StreamFanout, SubscriberDropped
from gateway.events.redis_streams import RedisStreamConsumer, RedisStreamPublisher
from gateway.events.sns_sqs import SnsPublisher, SqsConsumer, create_aws_client
from gateway.redis_keys import stream_keys

__all__ = [
    "BatchHandler",
    "Event",
    "EventConsumer",
    "EventMetrics",
    "EventPublisher",
    "FanoutSubscription",
    "Handler",
    "ReceivedEvent",
    "StreamFanout",
    "SubscriberDropped",
    "consume_batches",
    "create_event_consumer",
    "create_event_fanout",
    "create_event_publisher",
]


def create_event_publisher(
    backend: Literal["redis", "sns", "disabled"],
    *,
    metrics: EventMetrics,
    redis_client: "aioredis.Redis | None" = None,
    namespace: str | None = None,
    maxlen: int = 100_000,
    topic_arn: str | None = None,
    endpoint_url: str | None = None,
    region_name: str | None = None,
) -> EventPublisher:
    """The publisher of `backend`; "disabled" (events.enabled = false) publishes nothing.

    "redis" needs `redis_client` and `namespace`; "sns" needs `topic_arn`.
    """
    if backend == "disabled":
        return DisabledPublisher()
    if backend == "redis":
        client, keys_namespace = _require_redis(redis_client, namespace)
        return RedisStreamPublisher(
            client,
            stream_keys(keys_namespace),
            metrics=metrics,
            maxlen=maxlen,
        )
    if backend == "sns":
        if topic_arn is None:
            raise ValueError("the sns event backend needs topic_arn")
        sns = create_aws_client("sns", endpoint_url=endpoint_url, region_name=region_name)
        return SnsPublisher(sns, topic_arn, metrics=metrics)
    raise ValueError(f"unknown event backend {backend!r}")


def create_event_consumer(
    backend: Literal["redis", "sns"],
    *,
    metrics: EventMetrics,
    redis_client: "aioredis.Redis | None" = None,
    namespace: str | None = None,
    group: str | None = None,
    consumer: str | None = None,
    queue_url: str | None = None,
    dead_letter_queue_url: str | None = None,
    endpoint_url: str | None = None,
    region_name: str | None = None,
    max_deliveries: int = 5,
    **options: Any,
) -> EventConsumer:
    """A durable, acknowledging consumer of `backend`.

    "redis" needs `redis_client` (its socket timeout above `block_ms`), `namespace`, `group`
    and `consumer`; "sns" reads the SQS `queue_url` subscribed to the topic.
    `options` go to the backend: block_ms, visibility_timeout_ms, start_id (redis);
    wait_time_seconds, visibility_timeout_seconds (sns); batch_size (both).
    """
    if backend == "redis":
        client, keys_namespace = _require_redis(redis_client, namespace)
        if group is None or consumer is None:
            raise ValueError("the redis event consumer needs group and consumer names")
        return RedisStreamConsumer(
            client,
            stream_keys(keys_namespace),
            group,
            consumer,
            metrics=metrics,
            max_deliveries=max_deliveries,
            **options,
        )
    if backend == "sns":
        if queue_url is None:
            raise ValueError("the sns event consumer needs queue_url")
        sqs = create_aws_client("sqs", endpoint_url=endpoint_url, region_name=region_name)
        return SqsConsumer(
            sqs,
            queue_url,
            metrics=metrics,
            max_deliveries=max_deliveries,
            dead_letter_queue_url=dead_letter_queue_url,
            **options,
        )
    raise ValueError(f"unknown event backend {backend!r}")


def create_event_fanout(
    redis_client: "aioredis.Redis",
    namespace: str,
    *,
    metrics: EventMetrics,
    **options: Any,
) -> StreamFanout:
    """The one live reader of a process, for GraphQL subscriptions (Redis backend only).

    `options`: block_ms, batch_size, queue_size (per subscriber), retry_delay, outage_grace.
    """
    return StreamFanout(redis_client, stream_keys(namespace), metrics=metrics, **options)


def _require_redis(
    redis_client: "aioredis.Redis | None",
    namespace: str | None,
) -> tuple["aioredis.Redis", str]:
    if redis_client is None or namespace is None:
        raise ValueError("the redis event backend needs redis_client and namespace")
    return redis_client, namespace
