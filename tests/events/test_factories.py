"""The factories: callers pick a backend by name and get protocol objects back."""

import pytest
import redis.asyncio as aioredis

from gateway.errors import BadUserInput
from gateway.events import (
    Event,
    EventMetrics,
    ReceivedEvent,
    create_event_consumer,
    create_event_fanout,
    create_event_publisher,
)
from gateway.redis_keys import StreamKeys
from tests.support.wait import async_wait_until


def usergroup_event(n: int) -> Event:
    """An event numbered `n`."""
    return Event(event_type="slack-usergroups.update_users", source="test", payload={"n": n})


async def test_disabled_publisher_accepts_events_and_writes_nothing(
    redis_client: "aioredis.Redis",
    keys: StreamKeys,
    metrics: EventMetrics,
) -> None:
    publisher = create_event_publisher("disabled", metrics=metrics)
    assert await publisher.publish(usergroup_event(0)) is None
    await publisher.close()
    assert await redis_client.exists(keys.stream) == 0


async def test_redis_factories_connect_publisher_consumer_and_fanout_through_one_stream(
    redis_client: "aioredis.Redis",
    namespace: str,
    metrics: EventMetrics,
) -> None:
    publisher = create_event_publisher(
        "redis",
        metrics=metrics,
        redis_client=redis_client,
        namespace=namespace,
    )
    consumer = create_event_consumer(
        "redis",
        metrics=metrics,
        redis_client=redis_client,
        namespace=namespace,
        group="sink",
        consumer="sink-1",
        block_ms=100,
    )
    fanout = create_event_fanout(redis_client, namespace, metrics=metrics, block_ms=200)
    try:
        async with fanout.subscribe() as live:
            await consumer.receive()  # creates the group before anything is published
            message_id = await publisher.publish(usergroup_event(1))

            got: list[ReceivedEvent] = []

            async def durable_got_it() -> bool:
                got.extend(await consumer.receive())
                return bool(got)

            await async_wait_until(durable_got_it, timeout=10, what="the durable delivery")
            assert [r.delivery_id for r in got] == [message_id]
            assert await consumer.ack([r.delivery_id for r in got]) == 1
            async for received in live:
                assert received.delivery_id == message_id
                break
    finally:
        await fanout.close()
        await consumer.close()
        await publisher.close()


async def test_ack_of_something_that_is_not_a_stream_id_is_bad_user_input(
    redis_client: "aioredis.Redis",
    namespace: str,
    metrics: EventMetrics,
) -> None:
    consumer = create_event_consumer(
        "redis",
        metrics=metrics,
        redis_client=redis_client,
        namespace=namespace,
        group="sink",
        consumer="sink-1",
    )
    with pytest.raises(BadUserInput, match="stream entry id"):
        await consumer.ack(["DROP TABLE"])


def test_factories_name_what_a_backend_is_missing(metrics: EventMetrics) -> None:
    with pytest.raises(ValueError, match="redis_client and namespace"):
        create_event_publisher("redis", metrics=metrics)
    with pytest.raises(ValueError, match="topic_arn"):
        create_event_publisher("sns", metrics=metrics)
    with pytest.raises(ValueError, match="queue_url"):
        create_event_consumer("sns", metrics=metrics)
