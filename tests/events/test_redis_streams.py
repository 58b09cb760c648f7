"""Redis Streams backend against a real Redis: groups, acks, reclaim, dead letters, trimming."""

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from gateway.events.base import EventMetrics, ReceivedEvent
from gateway.events.model import Event
from gateway.events.redis_streams import RedisStreamConsumer, RedisStreamPublisher
from gateway.redis import create_redis
from gateway.redis_keys import StreamKeys
from tests.events.conftest import counted
from tests.support.ports import free_port
from tests.support.wait import async_wait_until

GROUP = "audit"


def usergroup_event(n: int = 0, event_type: str = "slack-usergroups.update_users") -> Event:
    """An event of `event_type` whose payload tells events apart by `n`."""
    return Event(event_type=event_type, source="qontract-gateway", payload={"n": n})


def group_consumer(
    client: "aioredis.Redis",
    keys: StreamKeys,
    metrics: EventMetrics,
    name: str = "worker-1",
    **options: int,
) -> RedisStreamConsumer:
    """A consumer in the test group that blocks briefly, so tests stay fast."""
    defaults = {"block_ms": 100, "visibility_timeout_ms": 200}
    return RedisStreamConsumer(
        client,
        keys,
        GROUP,
        name,
        metrics=metrics,
        **(defaults | options),  # type: ignore[arg-type]
    )


async def pending_count(client: "aioredis.Redis", keys: StreamKeys) -> int:
    """How many entries of the test group are delivered but not acknowledged."""
    summary = await client.xpending(keys.stream, GROUP)
    return int(summary["pending"])


async def test_published_event_is_received_by_group_consumer_and_ack_empties_pending(
    redis_client: "aioredis.Redis",
    keys: StreamKeys,
    metrics: EventMetrics,
    registry: CollectorRegistry,
) -> None:
    consumer = group_consumer(redis_client, keys, metrics)
    await consumer.ensure_group()
    publisher = RedisStreamPublisher(redis_client, keys, metrics=metrics)
    event = usergroup_event()

    message_id = await publisher.publish(event)
    received = await consumer.receive()

    assert [(r.event, r.delivery_id, r.delivery_count) for r in received] == [
        (event, message_id, 1)
    ]
    assert await pending_count(redis_client, keys) == 1
    assert await consumer.ack(received) == 1
    assert await pending_count(redis_client, keys) == 0
    assert counted(registry, "published", "redis", event.event_type) == 1
    assert counted(registry, "acknowledged", "redis", event.event_type) == 1


async def test_failing_handler_gets_redeliveries_then_event_is_dead_lettered_and_counted(
    redis_client: "aioredis.Redis",
    keys: StreamKeys,
    metrics: EventMetrics,
    registry: CollectorRegistry,
) -> None:
    consumer = group_consumer(redis_client, keys, metrics, max_deliveries=3)
    await consumer.ensure_group()
    event = usergroup_event()
    message_id = await RedisStreamPublisher(redis_client, keys, metrics=metrics).publish(event)
    attempts: list[int] = []

    async def failing_handler(received: ReceivedEvent) -> None:
        attempts.append(received.delivery_count)
        raise RuntimeError("slack is down")

    stop = asyncio.Event()
    consuming = asyncio.create_task(consumer.consume(failing_handler, stop=stop))
    try:

        async def dead_lettered() -> bool:
            return await redis_client.xlen(keys.dead_letter) == 1

        await async_wait_until(dead_lettered, timeout=10, what="the event in the dead letters")
    finally:
        stop.set()
        await consuming

    assert attempts == [1, 2, 3]
    entries: Any = await redis_client.xrange(keys.dead_letter)
    [(_, fields)] = entries
    assert Event.from_json(fields[b"event"]) == event
    assert fields[b"delivery_id"].decode() == message_id
    assert fields[b"deliveries"] == b"3"
    assert b"slack is down" in fields[b"reason"]
    assert await pending_count(redis_client, keys) == 0
    assert counted(registry, "dead_lettered", "redis", event.event_type) == 1
    assert counted(registry, "redelivered", "redis", event.event_type) == 2
    assert counted(registry, "acknowledged", "redis", event.event_type) == 0


async def test_successful_handler_acks_so_nothing_stays_pending(
    redis_client: "aioredis.Redis",
    keys: StreamKeys,
    metrics: EventMetrics,
) -> None:
    consumer = group_consumer(redis_client, keys, metrics)
    await consumer.ensure_group()
    publisher = RedisStreamPublisher(redis_client, keys, metrics=metrics)
    for n in range(3):
        await publisher.publish(usergroup_event(n))
    handled: list[int] = []

    async def handler(received: ReceivedEvent) -> None:
        handled.append(received.event.payload["n"])

    stop = asyncio.Event()
    consuming = asyncio.create_task(consumer.consume(handler, stop=stop))
    try:

        async def all_acked() -> bool:
            return len(handled) == 3 and await pending_count(redis_client, keys) == 0

        await async_wait_until(all_acked, timeout=10, what="three handled and acked events")
    finally:
        stop.set()
        await consuming
    assert handled == [0, 1, 2]


async def test_event_read_by_a_consumer_that_dies_before_ack_is_reclaimed_by_another(
    redis_client: "aioredis.Redis",
    keys: StreamKeys,
    metrics: EventMetrics,
) -> None:
    dead = group_consumer(redis_client, keys, metrics, name="dies")
    live = group_consumer(redis_client, keys, metrics, name="lives")
    await dead.ensure_group()
    event = usergroup_event()
    await RedisStreamPublisher(redis_client, keys, metrics=metrics).publish(event)
    [taken] = await dead.receive()

    reclaimed: list[ReceivedEvent] = []

    async def live_got_it() -> bool:
        reclaimed.extend(await live.receive())
        return bool(reclaimed)

    await async_wait_until(live_got_it, timeout=10, what="the stale entry to be reclaimed")

    assert [(r.event, r.delivery_id, r.delivery_count) for r in reclaimed] == [
        (event, taken.delivery_id, 2)
    ]
    assert await live.ack(reclaimed) == 1
    assert await pending_count(redis_client, keys) == 0


async def test_group_read_after_a_pause_gets_exactly_the_events_published_meanwhile(
    redis_client: "aioredis.Redis",
    keys: StreamKeys,
    metrics: EventMetrics,
) -> None:
    publisher = RedisStreamPublisher(redis_client, keys, metrics=metrics)
    first_session = group_consumer(redis_client, keys, metrics, name="listener")
    await first_session.ensure_group()
    await publisher.publish(usergroup_event(0))
    await first_session.ack(await first_session.receive())

    for n in (1, 2, 3):
        await publisher.publish(usergroup_event(n))
    second_session = group_consumer(redis_client, keys, metrics, name="listener")
    received = await second_session.receive(max_count=10)
    assert [r.event.payload["n"] for r in received] == [1, 2, 3]
    assert await second_session.ack([r.delivery_id for r in received]) == 3
    assert await second_session.receive() == []


async def test_new_group_created_with_start_id_dollar_sees_only_new_events(
    redis_client: "aioredis.Redis",
    keys: StreamKeys,
    metrics: EventMetrics,
) -> None:
    publisher = RedisStreamPublisher(redis_client, keys, metrics=metrics)
    await publisher.publish(usergroup_event(0))
    consumer = group_consumer(redis_client, keys, metrics, start_id="$")  # type: ignore[arg-type]
    await consumer.ensure_group()
    await publisher.publish(usergroup_event(1))
    assert [r.event.payload["n"] for r in await consumer.receive()] == [1]


async def test_undecodable_entry_goes_to_dead_letters_instead_of_blocking_the_group(
    redis_client: "aioredis.Redis",
    keys: StreamKeys,
    metrics: EventMetrics,
) -> None:
    consumer = group_consumer(redis_client, keys, metrics)
    await consumer.ensure_group()
    await redis_client.xadd(keys.stream, {"type": "a.b", "event": "not json"})
    await RedisStreamPublisher(redis_client, keys, metrics=metrics).publish(usergroup_event(7))

    received = await consumer.receive()

    assert [r.event.payload["n"] for r in received] == [7]
    assert await redis_client.xlen(keys.dead_letter) == 1
    assert await pending_count(redis_client, keys) == 1


async def test_maxlen_trimming_keeps_the_stream_bounded(
    redis_client: "aioredis.Redis",
    keys: StreamKeys,
    metrics: EventMetrics,
) -> None:
    publisher = RedisStreamPublisher(redis_client, keys, metrics=metrics, maxlen=100)
    for n in range(1_000):
        assert await publisher.publish(usergroup_event(n)) is not None
    length = await redis_client.xlen(keys.stream)
    assert 100 <= length < 300


async def test_publish_with_redis_down_returns_none_without_raising_and_counts_failure(
    keys: StreamKeys,
    metrics: EventMetrics,
    registry: CollectorRegistry,
) -> None:
    client = create_redis(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=0.5)
    try:
        publisher = RedisStreamPublisher(client, keys, metrics=metrics)
        event = usergroup_event()
        assert await publisher.publish(event) is None
        assert await publisher.publish(event) is None
    finally:
        await client.aclose()
    assert counted(registry, "publish_failures", "redis", event.event_type) == 2
    assert counted(registry, "published", "redis", event.event_type) == 0


async def test_consumer_refuses_a_client_whose_socket_timeout_is_shorter_than_its_block(
    redis_url: str,
    keys: StreamKeys,
    metrics: EventMetrics,
) -> None:
    client = create_redis(redis_url)  # the default 1 s socket timeout
    try:
        with pytest.raises(ValueError, match="socket_timeout"):
            RedisStreamConsumer(client, keys, GROUP, "c", metrics=metrics, block_ms=5_000)
    finally:
        await client.aclose()
