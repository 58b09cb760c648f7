"""The per-process stream fanout: filters, `since` replay with an exact seam, slow subscribers."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from gateway.errors import BadUserInput
from gateway.events.base import EventMetrics, ReceivedEvent
from gateway.events.model import Event
from gateway.events.redis_fanout import FanoutSubscription, StreamFanout, SubscriberDropped
from gateway.events.redis_streams import RedisStreamPublisher, encode_entry, entry_id
from gateway.redis_keys import StreamKeys
from tests.support.wait import async_wait_until


@pytest.fixture
async def fanout(
    redis_client: "aioredis.Redis",
    keys: StreamKeys,
    metrics: EventMetrics,
) -> AsyncIterator[StreamFanout]:
    """A started fanout over this test's stream, closed afterwards."""
    fanout = StreamFanout(redis_client, keys, metrics=metrics, block_ms=500)
    await fanout.start()
    yield fanout
    await fanout.close()


@pytest.fixture
def publisher(
    redis_client: "aioredis.Redis",
    keys: StreamKeys,
    metrics: EventMetrics,
) -> RedisStreamPublisher:
    """A publisher to this test's stream."""
    return RedisStreamPublisher(redis_client, keys, metrics=metrics)


async def publish(publisher: RedisStreamPublisher, event_type: str, n: int) -> str:
    """Publish an event of `event_type` numbered `n`; its stream id."""
    event = Event(event_type=event_type, source="test", payload={"n": n})
    message_id = await publisher.publish(event)
    assert message_id is not None
    return message_id


async def take(subscription: FanoutSubscription, count: int) -> list[ReceivedEvent]:
    """The next `count` events of `subscription`, failing after a deadline."""

    async def collect() -> list[ReceivedEvent]:
        got: list[ReceivedEvent] = []
        async for received in subscription:
            got.append(received)
            if len(got) == count:
                break
        return got

    return await asyncio.wait_for(collect(), timeout=10)


async def drain(subscription: FanoutSubscription, into: list[int]) -> None:
    """Append every event number `subscription` yields to `into` until it ends."""
    async for received in subscription:
        into.append(received.event.payload["n"])


async def test_subscribers_with_different_type_filters_get_exactly_their_events(
    fanout: StreamFanout,
    publisher: RedisStreamPublisher,
) -> None:
    async with (
        fanout.subscribe(event_types=["slack-usergroups.update_users"]) as users,
        fanout.subscribe(event_types=["slack-usergroups.error", "pagerduty.sync"]) as errors,
    ):
        plan = [
            ("slack-usergroups.update_users", 0),
            ("slack-usergroups.error", 1),
            ("github.sync", 2),
            ("slack-usergroups.update_users", 3),
            ("pagerduty.sync", 4),
            ("slack-usergroups.update_users", 5),
            ("slack-usergroups.error", 6),
        ]
        for event_type, n in plan:
            await publish(publisher, event_type, n)

        assert [r.event.payload["n"] for r in await take(users, 3)] == [0, 3, 5]
        assert [r.event.payload["n"] for r in await take(errors, 3)] == [1, 4, 6]


async def test_since_replays_retained_events_then_continues_live_without_gap_or_duplicate(
    fanout: StreamFanout,
    publisher: RedisStreamPublisher,
) -> None:
    first_id = await publish(publisher, "a.changed", 0)
    for n in range(1, 5):
        await publish(publisher, "a.changed", n)
    total = 200

    async def keep_publishing() -> None:
        for n in range(5, total):
            await publish(publisher, "a.changed", n)

    async with fanout.subscribe() as watcher:
        publishing = asyncio.create_task(keep_publishing())
        try:
            await take(watcher, 20)  # the reader is now live, in the middle of the burst
            async with fanout.subscribe(since=first_id) as subscription:
                received = await take(subscription, 10)
                received += await take(subscription, total - 11)  # resumes, never replays
        finally:
            await publishing

    assert [r.event.payload["n"] for r in received] == list(range(1, total))
    assert subscription.last_id == received[-1].delivery_id


async def test_slow_subscriber_is_dropped_with_a_reason_while_a_fast_one_keeps_receiving(
    fanout: StreamFanout,
    publisher: RedisStreamPublisher,
    registry: CollectorRegistry,
) -> None:
    async with (
        fanout.subscribe() as fast,
        fanout.subscribe(queue_size=2) as slow,
    ):
        fast_reader = asyncio.create_task(take(fast, 11))
        for n in range(10):
            await publish(publisher, "a.changed", n)

        async def slow_was_dropped() -> bool:
            return fanout.subscriber_count == 1

        await async_wait_until(slow_was_dropped, timeout=10, what="the slow subscriber dropped")
        await publish(publisher, "a.changed", 10)
        assert [r.event.payload["n"] for r in await fast_reader] == list(range(11))

        kept: list[int] = []
        with pytest.raises(SubscriberDropped) as dropped:
            await drain(slow, kept)
    assert kept == [0, 1]
    assert dropped.value.reason == "queue_full"
    assert "behind" in dropped.value.detail
    assert dropped.value.last_id == slow.last_id
    assert (
        registry.get_sample_value(
            "qontract_gateway_events_subscribers_dropped_total",
            {"backend": "redis-fanout", "reason": "queue_full"},
        )
        == 1
    )


async def test_closing_the_fanout_ends_waiting_subscribers_with_reason_closed(
    redis_client: "aioredis.Redis",
    keys: StreamKeys,
    metrics: EventMetrics,
) -> None:
    fanout = StreamFanout(redis_client, keys, metrics=metrics, block_ms=500)
    async with fanout.subscribe() as subscription:
        waiting = asyncio.create_task(take(subscription, 1))
        await fanout.close()
        with pytest.raises(SubscriberDropped, match="closed"):
            await waiting


async def test_since_that_is_not_a_stream_id_is_bad_user_input(fanout: StreamFanout) -> None:
    with pytest.raises(BadUserInput, match="stream id"):
        async with fanout.subscribe(since="yesterday"):
            pass


async def test_since_ahead_of_this_readers_position_skips_live_events_up_to_it(
    redis_url: str,
    fanout: StreamFanout,
    keys: StreamKeys,
) -> None:
    # A client resuming with a cursor from a replica whose reader was ahead of this one: the
    # entries are written synchronously, so this process's reader has not dispatched them yet.
    writer = redis.Redis.from_url(redis_url)
    try:
        events = [Event(event_type="a.b", source="t", payload={"n": n}) for n in range(3)]
        fields: list[Any] = [encode_entry(event) for event in events]
        ids = [writer.xadd(keys.stream, entry) for entry in fields]
    finally:
        writer.close()
    async with fanout.subscribe(since=entry_id(ids[1])) as subscription:
        [received] = await take(subscription, 1)
    assert received.event.payload["n"] == 2
