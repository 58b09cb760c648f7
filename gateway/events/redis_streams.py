"""Redis Streams backend: one stream per namespace, consumer groups, reclaim, dead letters."""

import asyncio
import re
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
import structlog
from pydantic import ValidationError
from redis.exceptions import ResponseError

from gateway.errors import BadUserInput, shown
from gateway.events.base import (
    UNKNOWN_EVENT_TYPE,
    Delivery,
    EventMetrics,
    Handler,
    ReceivedEvent,
    consume_until_stopped,
    publish_counted,
)
from gateway.events.model import Event
from gateway.redis_keys import StreamKeys

BACKEND = "redis"
TYPE_FIELD = b"type"
EVENT_FIELD = b"event"
STREAM_ID = re.compile(r"([0-9]{1,20})(?:-([0-9]{1,20}))?")
_UINT64_MAX = 2**64 - 1
MAX_RECLAIM_INTERVAL = 1.0


def encode_entry(event: Event) -> dict[bytes, bytes]:
    """The stream entry fields of `event`: its type (to filter without parsing) and its JSON."""
    return {TYPE_FIELD: event.event_type.encode(), EVENT_FIELD: event.to_json().encode()}


def decode_entry(fields: Mapping[bytes, bytes]) -> Event:
    """The event held in stream entry `fields`; raises ValueError when they hold none."""
    raw = fields.get(EVENT_FIELD)
    if raw is None:
        raise ValueError("stream entry has no event field")
    return Event.from_json(raw)


def entry_id(raw: bytes | str) -> str:
    """A stream entry id as text."""
    return raw.decode() if isinstance(raw, bytes) else raw


def is_stream_id(value: str) -> bool:
    """True for an id Redis accepts: `<ms>` or `<ms>-<seq>`, each an unsigned 64-bit number."""
    found = STREAM_ID.fullmatch(value)
    return found is not None and all(
        int(part) <= _UINT64_MAX for part in found.groups() if part is not None
    )


def stream_id_key(value: str) -> tuple[int, int]:
    """A stream id ("ms-seq" or "ms") as a tuple that sorts the way Redis orders entries."""
    milliseconds, _, sequence = value.partition("-")
    return int(milliseconds), int(sequence or 0)


def require_blocking_client(client: "aioredis.Redis", block_ms: int) -> None:
    """Refuse a client whose socket timeout would cut a `block_ms` blocking read short."""
    timeout = client.connection_pool.connection_kwargs.get("socket_timeout")
    if timeout is not None and timeout * 1000 <= block_ms:
        raise ValueError(
            f"a blocking read of {block_ms} ms needs a client whose socket_timeout exceeds it "
            f"(this one has {timeout} s); create one with create_redis(url, socket_timeout=...)"
        )


async def acknowledge(
    client: "aioredis.Redis",
    keys: StreamKeys,
    group: str,
    deliveries: Sequence[Delivery],
    metrics: EventMetrics,
) -> int:
    """XACK deliveries or entry ids of `group` (BadUserInput if malformed); how many were pending.

    It never blocks, so any client will do (not only one made for blocking reads).
    """
    by_type: dict[str, list[str]] = defaultdict(list)
    for delivery in deliveries:
        if isinstance(delivery, ReceivedEvent):
            by_type[delivery.event.event_type].append(delivery.delivery_id)
        elif is_stream_id(delivery):
            by_type[UNKNOWN_EVENT_TYPE].append(delivery)
        else:
            raise BadUserInput(f"{shown(delivery)} is not a stream entry id")
    if not by_type:
        return 0
    pipe = client.pipeline(transaction=False)
    for ids in by_type.values():
        pipe.xack(keys.stream, group, *ids)
    counts: list[int] = await pipe.execute()
    for event_type, count in zip(by_type, counts, strict=True):
        if count:
            metrics.acknowledged.labels(BACKEND, event_type).inc(count)
    return sum(counts)


class RedisStreamPublisher:
    """XADD to the namespace stream with approximate MAXLEN trimming, on a shared client."""

    def __init__(
        self,
        client: "aioredis.Redis",
        keys: StreamKeys,
        *,
        metrics: EventMetrics,
        maxlen: int = 100_000,
    ) -> None:
        self._client = client
        self._keys = keys
        self._metrics = metrics
        self._maxlen = maxlen
        self._log = structlog.get_logger(__name__)

    async def publish(self, event: Event) -> str | None:
        """Append `event` to the stream; its entry id, or None (logged, counted) on failure."""

        async def send() -> str:
            raw_id = await self._client.xadd(
                self._keys.stream,
                encode_entry(event),  # type: ignore[arg-type]
                maxlen=self._maxlen,
                approximate=True,
            )
            return entry_id(raw_id)

        return await publish_counted(BACKEND, self._metrics, event, send)

    async def close(self) -> None:
        """Nothing to release: the client belongs to the caller."""


class RedisStreamConsumer:
    """One consumer in a consumer group: at-least-once, reclaim after a visibility timeout.

    The client must have a socket timeout longer than `block_ms` (see `create_redis`). A new
    group starts at `start_id`: "0" for every retained event, "$" for new events only.
    """

    def __init__(
        self,
        client: "aioredis.Redis",
        keys: StreamKeys,
        group: str,
        consumer: str,
        *,
        metrics: EventMetrics,
        block_ms: int = 2_000,
        visibility_timeout_ms: int = 30_000,
        max_deliveries: int = 5,
        batch_size: int = 10,
        start_id: str = "0",
        dead_letter_maxlen: int = 100_000,
    ) -> None:
        require_blocking_client(client, block_ms)
        if max_deliveries < 1:
            raise ValueError("max_deliveries must be at least 1")
        self._client = client
        self._keys = keys
        self._group = group
        self._consumer = consumer
        self._metrics = metrics
        self._block_ms = block_ms
        self._visibility_timeout_ms = visibility_timeout_ms
        self._max_deliveries = max_deliveries
        self._batch_size = batch_size
        self._start_id = start_id
        self._dead_letter_maxlen = dead_letter_maxlen
        self._claim_cursor = "0-0"
        self._reclaim_every = min(visibility_timeout_ms / 10_000, MAX_RECLAIM_INTERVAL)
        self._next_reclaim = 0.0
        self._history_cursor: str | None = "0-0"
        self._group_ready = False
        self._log = structlog.get_logger(__name__).bind(group=group, consumer=consumer)

    async def ensure_group(self) -> None:
        """Create the consumer group (and the stream) unless it exists."""
        if self._group_ready:
            return
        try:
            await self._client.xgroup_create(
                self._keys.stream,
                self._group,
                id=self._start_id,
                mkstream=True,
            )
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._group_ready = True

    async def receive(self, max_count: int = 10) -> list[ReceivedEvent]:
        """This consumer's own unacknowledged deliveries (a restart), then stale ones reclaimed
        from any consumer, then new entries (blocking). A Redis that lost the group (restarted
        without its data) fails this read with NOGROUP; the next one makes the group again."""
        await self.ensure_group()
        try:
            received = await self._own_history(max_count)
            if not received:
                received = await self._reclaim(max_count)
            if len(received) < max_count:
                received += await self._read_new(
                    max_count - len(received),
                    block_ms=None if received else self._block_ms,
                )
        except ResponseError as error:
            if "NOGROUP" in str(error):
                self._group_ready = False
                self._claim_cursor = self._history_cursor = "0-0"
            raise
        for delivery in received:
            event_type = delivery.event.event_type
            self._metrics.delivered.labels(BACKEND, event_type).inc()
            if delivery.delivery_count > 1:
                self._metrics.redelivered.labels(BACKEND, event_type).inc()
        return received

    async def ack(self, deliveries: Sequence[Delivery]) -> int:
        """XACK deliveries or entry ids (BadUserInput if malformed); how many were pending."""
        return await acknowledge(self._client, self._keys, self._group, deliveries, self._metrics)

    async def reject(self, received: ReceivedEvent, reason: str) -> None:
        """A failed attempt: dead-letter after the last allowed one, else leave it pending."""
        if received.delivery_count >= self._max_deliveries:
            await self._dead_letter(
                received.delivery_id,
                encode_entry(received.event),
                received.event.event_type,
                received.delivery_count,
                reason,
            )

    async def consume(self, handler: Handler, *, stop: asyncio.Event | None = None) -> None:
        """Run `handler` on every delivery until `stop` is set; ack on success."""
        await consume_until_stopped(self, handler, stop, self._batch_size)

    async def close(self) -> None:
        """Nothing to release: the client belongs to the caller."""

    async def _read_new(self, count: int, block_ms: int | None) -> list[ReceivedEvent]:
        response: Any = await self._client.xreadgroup(
            self._group,
            self._consumer,
            {self._keys.stream: ">"},
            count=count,
            block=block_ms,
        )
        received: list[ReceivedEvent] = []
        for _stream, entries in response or ():
            for raw_id, fields in entries:
                delivery = await self._decode_or_dead_letter(entry_id(raw_id), fields, 1)
                if delivery is not None:
                    received.append(delivery)
        return received

    async def _reclaim(self, count: int) -> list[ReceivedEvent]:
        """Stale deliveries of any consumer: a scan starts at most every tenth of the
        visibility timeout (and every second), and goes on while it finds a full batch."""
        if self._claim_cursor == "0-0":
            now = time.monotonic()
            if now < self._next_reclaim:
                return []
            self._next_reclaim = now + self._reclaim_every
        response = await self._client.xautoclaim(
            self._keys.stream,
            self._group,
            self._consumer,
            min_idle_time=self._visibility_timeout_ms,
            start_id=self._claim_cursor,
            count=count,
        )
        self._claim_cursor = entry_id(response[0])
        entries = [(entry_id(raw_id), fields) for raw_id, fields in response[1] if fields]
        return await self._redeliver(entries)

    async def _own_history(self, count: int) -> list[ReceivedEvent]:
        """Entries delivered to this consumer name before and never acknowledged, once."""
        if self._history_cursor is None:
            return []
        response: Any = await self._client.xreadgroup(
            self._group,
            self._consumer,
            {self._keys.stream: self._history_cursor},
            count=count,
        )
        entries = [
            (entry_id(raw_id), fields)
            for _stream, stream_entries in response or ()
            for raw_id, fields in stream_entries
        ]
        if not entries:
            self._history_cursor = None
            return []
        self._history_cursor = entries[-1][0]
        return await self._redeliver([(i, fields) for i, fields in entries if fields])

    async def _redeliver(
        self,
        entries: list[tuple[str, dict[bytes, bytes]]],
    ) -> list[ReceivedEvent]:
        """Deliveries of entries handed out before; dead-letters those past max_deliveries."""
        if not entries:
            return []
        pipe = self._client.pipeline(transaction=False)
        for claimed_id, _fields in entries:
            pipe.xpending_range(
                self._keys.stream,
                self._group,
                claimed_id,
                claimed_id,
                1,
                self._consumer,
            )
        pending: list[list[dict[str, Any]]] = await pipe.execute()
        received: list[ReceivedEvent] = []
        for (claimed_id, fields), info in zip(entries, pending, strict=True):
            if not info:
                continue
            deliveries = int(info[0]["times_delivered"])
            if deliveries > self._max_deliveries:
                await self._dead_letter(
                    claimed_id,
                    fields,
                    self._type_of(fields),
                    deliveries - 1,
                    "not acknowledged within the visibility timeout",
                )
                continue
            delivery = await self._decode_or_dead_letter(claimed_id, fields, deliveries)
            if delivery is not None:
                received.append(delivery)
        return received

    async def _decode_or_dead_letter(
        self,
        delivery_id: str,
        fields: Mapping[bytes, bytes],
        deliveries: int,
    ) -> ReceivedEvent | None:
        try:
            event = decode_entry(fields)
        except (ValueError, ValidationError) as error:
            await self._dead_letter(
                delivery_id,
                fields,
                self._type_of(fields),
                deliveries,
                f"undecodable: {error}",
            )
            return None
        return ReceivedEvent(event=event, delivery_id=delivery_id, delivery_count=deliveries)

    async def _dead_letter(
        self,
        delivery_id: str,
        fields: Mapping[bytes, bytes],
        event_type: str,
        deliveries: int,
        reason: str,
    ) -> None:
        entry = {
            **fields,
            b"delivery_id": delivery_id.encode(),
            b"group": self._group.encode(),
            b"deliveries": str(deliveries).encode(),
            b"reason": reason.encode(),
        }
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.xadd(
                self._keys.dead_letter,
                entry,  # type: ignore[arg-type]
                maxlen=self._dead_letter_maxlen,
                approximate=True,
            )
            pipe.xack(self._keys.stream, self._group, delivery_id)
            await pipe.execute()
        self._metrics.dead_lettered.labels(BACKEND, event_type).inc()
        self._log.warning(
            "event dead-lettered",
            delivery_id=delivery_id,
            event_type=event_type,
            deliveries=deliveries,
            reason=reason,
        )

    @staticmethod
    def _type_of(fields: Mapping[bytes, bytes]) -> str:
        raw = fields.get(TYPE_FIELD)
        return raw.decode(errors="replace") if raw else UNKNOWN_EVENT_TYPE
