"""`events_v1` (live), `events_durable_v1` (consumer group) and `events_ack_v1`."""

import asyncio
import time
from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry
import structlog
from redis.exceptions import RedisError
from strawberry.types import Info

from gateway.errors import SubscriptionDropped, UpstreamUnavailable, redis_unavailable
from gateway.events import ReceivedEvent, SubscriberDropped
from gateway.events.redis_fanout import REDIS_UNAVAILABLE, STREAM
from schema.context import RequestContext
from schema.scalars import JSON

log = structlog.get_logger(__name__)
READ_RETRY_SECONDS = 1.0


@strawberry.type(name="Event_v1")
class EventV1:
    """Something the gateway did (an applied action or an error), as delivered to a listener."""

    id: str = strawberry.field(description="The event's own id (the same in every delivery)")
    version: str
    event_type: str = strawberry.field(description="Dot-separated, e.g. `slack-usergroups.update`")
    source: str
    timestamp: datetime
    payload: JSON
    stream_id: str = strawberry.field(
        description="Position in the stream: `since` for live resumption, the id to acknowledge "
        "for durable deliveries"
    )
    delivery_count: int = strawberry.field(
        description="How often this event was delivered to the group (always 1 when live)"
    )


def event_v1(received: ReceivedEvent) -> EventV1:
    """The GraphQL form of one delivery."""
    event = received.event
    return EventV1(
        id=event.id,
        version=event.version,
        event_type=event.event_type,
        source=event.source,
        timestamp=event.timestamp,
        payload=JSON(event.payload),
        stream_id=received.delivery_id,
        delivery_count=received.delivery_count,
    )


async def events(
    info: Info[RequestContext, None],
    types: list[str] | None = None,
    since: str | None = None,
) -> AsyncGenerator[EventV1, None]:
    """Live events of `types` (all when absent); after `since` replayed first, with no gap.

    Redis unreachable for `events.outage_grace` ends it with UPSTREAM_UNAVAILABLE (upstream
    redis) carrying `last_id`, the cursor to resubscribe with."""
    async with info.context.runtime.events.live(types, since) as subscription:
        try:
            async for received in subscription:
                yield event_v1(received)
        except SubscriberDropped as dropped:
            if dropped.reason == "closed":
                return
            if dropped.reason == REDIS_UNAVAILABLE:
                raise UpstreamUnavailable(
                    f"{dropped.detail}; resubscribe with since: last_id",
                    upstream="redis",
                    last_id=dropped.last_id,
                ) from None
            raise SubscriptionDropped(
                f"{dropped.detail}; resubscribe with since: last_id",
                reason=dropped.reason,
                last_id=dropped.last_id,
            ) from None


async def events_durable(
    info: Info[RequestContext, None],
    group: str,
    consumer: str,
    types: list[str] | None = None,
) -> AsyncGenerator[EventV1, None]:
    """Deliveries to `consumer` of consumer `group`; each comes back until it is acknowledged.

    Reads that fail on Redis are retried for `events.outage_grace`; past it the subscription
    ends with UPSTREAM_UNAVAILABLE (upstream redis). Nothing is lost: unacknowledged
    deliveries come back to the group after `visibility_timeout`.
    """
    wanted = None if types is None else frozenset(types)
    hub = info.context.runtime.events
    outage_began: float | None = None
    async with hub.durable(group, consumer) as reader:
        while True:
            try:
                batch = await reader.receive(hub.settings.durable_batch_size)
                unwanted = [r for r in batch if wanted and r.event.event_type not in wanted]
                if unwanted:
                    await reader.ack(unwanted)
            except (RedisError, OSError) as error:
                now = time.monotonic()
                if outage_began is None:  # logged once per outage, not once per retry
                    log.warning(
                        "durable event read failed; retrying", group=group, error=repr(error)
                    )
                    outage_began = now
                if now - outage_began >= hub.settings.outage_grace:
                    raise redis_unavailable(error, STREAM) from None
                await asyncio.sleep(READ_RETRY_SECONDS)
                continue
            outage_began = None
            for received in batch:
                if wanted is None or received.event.event_type in wanted:
                    yield event_v1(received)


async def events_ack(info: Info[RequestContext, None], group: str, ids: list[str]) -> int:
    """Acknowledge durable deliveries of `group` by `stream_id`; how many were still pending."""
    return await info.context.runtime.events.acknowledge(group, ids)
