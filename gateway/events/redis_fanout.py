"""One stream reader per process, fanned out to many live subscribers with bounded queues."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import redis.asyncio as aioredis
import structlog
from pydantic import ValidationError
from redis.exceptions import RedisError

from gateway.errors import BadUserInput, UpstreamUnavailable, redis_unavailable, shown
from gateway.events.base import UNKNOWN_EVENT_TYPE, EventMetrics, ReceivedEvent
from gateway.events.redis_streams import (
    TYPE_FIELD,
    decode_entry,
    entry_id,
    is_stream_id,
    require_blocking_client,
    stream_id_key,
)
from gateway.redis_keys import StreamKeys

BACKEND = "redis-fanout"
NOTHING_READ = "0-0"
REDIS_UNAVAILABLE = "redis_unavailable"
"""The drop reason of live subscribers when the stream could not be read for the grace."""
STREAM = "event stream"


class SubscriberDropped(Exception):
    """The gateway ended a live subscription; resubscribe with `since=last_id` to fill the gap."""

    def __init__(self, reason: str, detail: str, last_id: str | None) -> None:
        super().__init__(f"subscription dropped ({reason}): {detail}")
        self.reason = reason
        self.detail = detail
        self.last_id = last_id


class FanoutSubscription:
    """One live subscriber: events after `since` replayed first, then live ones, in stream order.

    Iterate it with `async for` (again after a `break`: it resumes, it does not replay); when
    the gateway drops it, the events it already queued are delivered first, then
    `SubscriberDropped` is raised.
    """

    def __init__(
        self,
        fanout: "StreamFanout",
        *,
        event_types: frozenset[str] | None,
        queue_size: int,
        since: str | None,
        live_from: str,
    ) -> None:
        self._fanout = fanout
        self._event_types = event_types
        self._queue: asyncio.Queue[ReceivedEvent | None] = asyncio.Queue(queue_size)
        self._since = since
        self._live_from = live_from
        self._dropped: tuple[str, str] | None = None
        self._last_id: str | None = since
        self._iterator: AsyncIterator[ReceivedEvent] | None = None
        # A cursor from a replica whose reader is ahead of ours: skip live events up to it.
        self._skip_through = (
            stream_id_key(since)
            if since is not None and stream_id_key(since) > stream_id_key(live_from)
            else None
        )

    @property
    def last_id(self) -> str | None:
        """The stream id of the last event this subscriber was given (a `since` cursor)."""
        return self._last_id

    @property
    def queue_size(self) -> int:
        """How many live events may wait for this subscriber before it is dropped."""
        return self._queue.maxsize

    def wants(self, event_type: str) -> bool:
        """True when this subscriber asked for events of `event_type`."""
        return self._event_types is None or event_type in self._event_types

    def offer(self, received: ReceivedEvent) -> bool:
        """Queue a live event; False when the queue is full (the subscriber fell behind)."""
        try:
            self._queue.put_nowait(received)
        except asyncio.QueueFull:
            return False
        return True

    def drop(self, reason: str, detail: str) -> None:
        """Stop feeding this subscriber; its iteration ends with `SubscriberDropped`."""
        if self._dropped is not None:
            return
        self._dropped = (reason, detail)
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)

    def __aiter__(self) -> AsyncIterator[ReceivedEvent]:
        if self._iterator is None:
            self._iterator = self._events()
        return self._iterator

    async def _events(self) -> AsyncIterator[ReceivedEvent]:
        if self._since is not None:
            async for received in self._fanout.replay(
                self._since,
                self._live_from,
                self._event_types,
            ):
                self._last_id = received.delivery_id
                yield received
        while True:
            if self._dropped is not None and self._queue.empty():
                raise self._ended()
            live = await self._queue.get()
            if live is None:
                raise self._ended()
            if self._skip_through is not None:
                if stream_id_key(live.delivery_id) <= self._skip_through:
                    continue
                self._skip_through = None
            self._last_id = live.delivery_id
            yield live

    def _ended(self) -> SubscriberDropped:
        reason, detail = self._dropped or ("closed", "the subscription ended")
        return SubscriberDropped(reason, detail, self._last_id)


class StreamFanout:
    """Reads the namespace stream once (XREAD BLOCK) and feeds every in-process subscriber.

    The client must have a socket timeout longer than `block_ms`. A subscriber whose queue
    overflows is dropped with a reason rather than buffered without bound. While Redis cannot
    be read, the reader retries every `retry_delay`; once that has lasted `outage_grace`,
    every subscriber is dropped (`redis_unavailable`) and new ones are refused with
    UPSTREAM_UNAVAILABLE until a read succeeds again.
    """

    def __init__(
        self,
        client: "aioredis.Redis",
        keys: StreamKeys,
        *,
        metrics: EventMetrics,
        block_ms: int = 1_000,
        batch_size: int = 500,
        queue_size: int = 1_000,
        retry_delay: float = 1.0,
        outage_grace: float = 3.0,
    ) -> None:
        require_blocking_client(client, block_ms)
        self._client = client
        self._keys = keys
        self._metrics = metrics
        self._block_ms = block_ms
        self._batch_size = batch_size
        self._queue_size = queue_size
        self._retry_delay = retry_delay
        self._outage_grace = outage_grace
        self._outage: tuple[float, Exception] | None = None
        self._subscribers: set[FanoutSubscription] = set()
        self._last_id = NOTHING_READ
        self._reader: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        self._log = structlog.get_logger(__name__)

    @property
    def subscriber_count(self) -> int:
        """How many live subscribers are being fed."""
        return len(self._subscribers)

    async def start(self) -> None:
        """Start the reader at the stream's current end (idempotent; `subscribe` calls it)."""
        async with self._starting:
            if self._reader is not None:
                return
            newest: Any = await self._client.xrevrange(self._keys.stream, count=1)
            self._last_id = entry_id(newest[0][0]) if newest else NOTHING_READ
            self._reader = asyncio.create_task(self._read_forever(), name="event-stream-fanout")

    @contextlib.asynccontextmanager
    async def subscribe(
        self,
        *,
        event_types: Iterable[str] | None = None,
        since: str | None = None,
        queue_size: int | None = None,
    ) -> AsyncIterator[FanoutSubscription]:
        """A subscription for the `async with` block; `since` (exclusive) replays from that id."""
        if since is not None and not is_stream_id(since):
            raise BadUserInput(
                f"since must be a stream id like '1700000000000-0', not {shown(since)}"
            )
        await self.start()
        unavailable = self._unavailable()
        if unavailable is not None:
            raise unavailable
        subscription = FanoutSubscription(
            self,
            event_types=None if event_types is None else frozenset(event_types),
            queue_size=queue_size or self._queue_size,
            since=since,
            live_from=self._last_id,
        )
        self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            self._subscribers.discard(subscription)

    async def replay(
        self,
        since: str,
        until: str,
        event_types: frozenset[str] | None,
    ) -> AsyncIterator[ReceivedEvent]:
        """Retained events after `since` up to and including `until`, filtered by type."""
        start = "(" + since
        while until != NOTHING_READ:
            entries: Any = await self._client.xrange(
                self._keys.stream,
                min=start,
                max=until,
                count=self._batch_size,
            )
            for raw_id, fields in entries:
                event_type = self._type_of(fields)
                if event_types is not None and event_type not in event_types:
                    continue
                received = self._decode(entry_id(raw_id), fields)
                if received is not None:
                    self._metrics.delivered.labels(BACKEND, event_type).inc()
                    yield received
            if len(entries) < self._batch_size:
                return
            start = "(" + entry_id(entries[-1][0])

    async def close(self) -> None:
        """Stop the reader and end every subscription with reason `closed`."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        for subscription in tuple(self._subscribers):
            self._drop(subscription, "closed", "the gateway is shutting down")

    def _unavailable(self) -> UpstreamUnavailable | None:
        """The error for subscribers once reads have failed for `outage_grace`, else None."""
        if self._outage is None:
            return None
        began, error = self._outage
        if time.monotonic() - began < self._outage_grace:
            return None
        return redis_unavailable(error, STREAM)

    def _read_failed(self, error: Exception) -> None:
        """Note a failed read; past the grace, drop every subscriber with the Redis error."""
        if self._outage is None:  # logged once per outage, not once per retry
            self._log.warning("event stream read failed; retrying", error=repr(error))
            self._outage = (time.monotonic(), error)
        else:
            self._outage = (self._outage[0], error)
        unavailable = self._unavailable()
        if unavailable is not None and self._subscribers:
            self._log.warning(
                "live event subscribers dropped; Redis unreachable",
                subscribers=len(self._subscribers),
                error=repr(error),
            )
            for subscription in tuple(self._subscribers):
                self._drop(subscription, REDIS_UNAVAILABLE, unavailable.message, log=False)

    async def _read_forever(self) -> None:
        while True:
            try:
                response: Any = await self._client.xread(
                    {self._keys.stream: self._last_id},
                    count=self._batch_size,
                    block=self._block_ms,
                )
            except (RedisError, OSError) as error:
                self._read_failed(error)
                await asyncio.sleep(self._retry_delay)
                continue
            except Exception as error:  # not an outage: logged, and the reader goes on
                self._log.error("event stream read failed; retrying", error=repr(error))
                await asyncio.sleep(self._retry_delay)
                continue
            if self._outage is not None:
                self._log.info("event stream read recovered")
                self._outage = None
            try:
                for _stream, entries in response or ():
                    self._dispatch(entries)
            except Exception as error:
                self._log.error("event dispatch failed; continuing", error=repr(error))

    def _dispatch(self, entries: Sequence[tuple[bytes, dict[bytes, bytes]]]) -> None:
        # No await in here: a subscriber registered between two reads sees exactly the entries
        # after the `live_from` it was given, which is what makes the `since` seam exact.
        subscribers = tuple(self._subscribers)
        for raw_id, fields in entries:
            delivery_id = entry_id(raw_id)
            self._last_id = delivery_id
            event_type = self._type_of(fields)
            targets = [s for s in subscribers if s.wants(event_type)]
            if not targets:
                continue
            received = self._decode(delivery_id, fields)
            if received is None:
                continue
            fed = 0
            for subscription in targets:
                if subscription.offer(received):
                    fed += 1
                else:
                    self._drop(
                        subscription,
                        "queue_full",
                        f"fell more than {subscription.queue_size} events behind",
                    )
                    subscribers = tuple(self._subscribers)
            self._metrics.delivered.labels(BACKEND, event_type).inc(fed)

    def _drop(
        self, subscription: FanoutSubscription, reason: str, detail: str, log: bool = True
    ) -> None:
        self._subscribers.discard(subscription)
        subscription.drop(reason, detail)
        self._metrics.subscribers_dropped.labels(BACKEND, reason).inc()
        if log:
            self._log.warning("event subscriber dropped", reason=reason, detail=detail)

    def _decode(self, delivery_id: str, fields: dict[bytes, bytes]) -> ReceivedEvent | None:
        try:
            event = decode_entry(fields)
        except (ValueError, ValidationError) as error:
            self._log.warning("undecodable stream entry skipped", id=delivery_id, error=repr(error))
            return None
        return ReceivedEvent(event=event, delivery_id=delivery_id, delivery_count=1)

    @staticmethod
    def _type_of(fields: dict[bytes, bytes]) -> str:
        raw = fields.get(TYPE_FIELD)
        return raw.decode(errors="replace") if raw else UNKNOWN_EVENT_TYPE
