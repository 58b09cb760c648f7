"""What every event backend offers: the publisher and consumer protocols, deliveries, metrics."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog
from prometheus_client import CollectorRegistry, Counter

from gateway.events.model import Event

UNKNOWN_EVENT_TYPE = "unknown"


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    """One delivery of an event: `delivery_id` is what `ack` takes; the count starts at 1."""

    event: Event
    delivery_id: str
    delivery_count: int


Handler = Callable[[ReceivedEvent], Awaitable[None]]
BatchHandler = Callable[[Sequence[ReceivedEvent]], Awaitable[Mapping[str, Exception]]]
"""Handles a batch of deliveries at once; returns the failures by delivery id."""
Delivery = ReceivedEvent | str


class EventPublisher(Protocol):
    """Publishes events; never raises into the caller (fire and forget, failures counted)."""

    async def publish(self, event: Event) -> str | None:
        """Publish `event`; the backend's message id, or None when it was not published."""
        ...

    async def close(self) -> None:
        """Release what the publisher holds (it does not close a client it was given)."""
        ...


class EventConsumer(Protocol):
    """Durable, at-least-once delivery: an event comes back until it is acknowledged.

    `receive` hands out deliveries, `ack` settles them, `reject` reports a failed attempt
    (after `max_deliveries` attempts the event goes to the dead letters instead of coming
    back). `consume` runs a handler over all of it: ack on success, reject on exception.
    """

    async def receive(self, max_count: int = 10) -> list[ReceivedEvent]:
        """Up to `max_count` deliveries: reclaimed stale ones first, then new ones; may be empty."""
        ...

    async def ack(self, deliveries: Sequence[Delivery]) -> int:
        """Acknowledge deliveries (objects or delivery ids); returns how many were pending."""
        ...

    async def reject(self, received: ReceivedEvent, reason: str) -> None:
        """Record a failed attempt: dead-letter after the last allowed one, else redeliver later."""
        ...

    async def consume(self, handler: Handler, *, stop: asyncio.Event | None = None) -> None:
        """Run `handler` on every delivery until `stop` is set."""
        ...

    async def close(self) -> None:
        """Release what the consumer holds (it does not close a client it was given)."""
        ...


class EventMetrics:
    """Event counters, registered in the registry the app owns (never the global default)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("backend", "event_type")
        prefix = "qontract_gateway_events_"

        def counter(name: str, documentation: str, names: Sequence[str] = labels) -> Counter:
            return Counter(prefix + name, documentation, names, registry=registry)

        self.published = counter("published", "Events accepted by the backend.")
        self.publish_failures = counter("publish_failures", "Events the backend did not accept.")
        self.delivered = counter("delivered", "Deliveries handed to consumers or subscribers.")
        self.acknowledged = counter("acknowledged", "Deliveries acknowledged after processing.")
        self.redelivered = counter("redelivered", "Deliveries of an event delivered before.")
        self.dead_lettered = counter("dead_lettered", "Events moved to the dead letters.")
        self.subscribers_dropped = counter(
            "subscribers_dropped",
            "Live subscribers dropped, by reason.",
            ("backend", "reason"),
        )


async def consume_until_stopped(
    consumer: EventConsumer,
    handler: Handler,
    stop: asyncio.Event | None,
    max_count: int,
    retry_delay: float = 1.0,
) -> None:
    """The loop behind every `consume`: receive, handle each in turn, ack successes, reject
    failures."""

    async def each_in_turn(batch: Sequence[ReceivedEvent]) -> dict[str, Exception]:
        failures: dict[str, Exception] = {}
        for received in batch:
            try:
                await handler(received)
            except Exception as error:
                failures[received.delivery_id] = error
        return failures

    await consume_batches(consumer, each_in_turn, stop, max_count, retry_delay)


async def consume_batches(
    consumer: EventConsumer,
    handler: BatchHandler,
    stop: asyncio.Event | None,
    max_count: int,
    retry_delay: float = 1.0,
) -> None:
    """Receive up to `max_count` deliveries at a time and hand each batch to `handler`; ack
    what it did not report failed (in one call), reject what it did, until `stop` is set."""
    log = structlog.get_logger(__name__)
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            batch = await consumer.receive(max_count)
        except Exception as error:
            log.warning("event receive failed; retrying", error=repr(error))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), retry_delay)
            continue
        if not batch:
            continue
        try:
            failures = await handler(batch)
        except Exception as error:
            failures = {received.delivery_id: error for received in batch}
        handled: list[Delivery] = []
        for received in batch:
            failure = failures.get(received.delivery_id)
            if failure is None:
                handled.append(received)
                continue
            log.warning(
                "event handler failed",
                event_id=received.event.id,
                event_type=received.event.event_type,
                delivery_id=received.delivery_id,
                delivery_count=received.delivery_count,
                error=repr(failure),
            )
            await _reject_quietly(consumer, received, repr(failure))
        if handled:
            try:
                await consumer.ack(handled)
            except Exception as error:
                log.warning("event ack failed; they will be redelivered", error=repr(error))


async def _reject_quietly(consumer: EventConsumer, received: ReceivedEvent, reason: str) -> None:
    try:
        await consumer.reject(received, reason)
    except Exception as error:
        structlog.get_logger(__name__).warning(
            "event reject failed; it will be redelivered",
            delivery_id=received.delivery_id,
            error=repr(error),
        )


async def publish_counted(
    backend: str, metrics: EventMetrics, event: Event, send: Callable[[], Awaitable[str]]
) -> str | None:
    """Run `send` for `event`: its message id, or None after logging and counting the failure.

    This is what makes publishing fire-and-forget for producers: nothing is raised to them.
    """
    try:
        message_id = await send()
    except Exception as error:
        metrics.publish_failures.labels(backend, event.event_type).inc()
        structlog.get_logger(__name__).error(
            "event publish failed",
            backend=backend,
            event_id=event.id,
            event_type=event.event_type,
            error=repr(error),
        )
        return None
    metrics.published.labels(backend, event.event_type).inc()
    return message_id
