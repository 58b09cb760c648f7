"""The events of one reconcile run: `<prefix>.<action>` types, published without ever raising."""

from typing import Any

import structlog

from gateway.events.base import EventPublisher
from gateway.events.model import Event
from gateway.tracing import current_traceparent

EVENT_SOURCE = "qontract-gateway"


class ActionLog:
    """Publishes a reconciler's events; a failing publisher is logged, never raised."""

    def __init__(self, publisher: EventPublisher, prefix: str) -> None:
        self.publisher = publisher
        self.prefix = prefix

    async def publish(self, name: str, payload: dict[str, Any]) -> None:
        """Publish `<prefix>.<name>` with `payload`."""
        event_type = f"{self.prefix}.{name}"
        try:
            await self.publisher.publish(
                Event(
                    event_type=event_type,
                    source=EVENT_SOURCE,
                    payload=payload,
                    traceparent=current_traceparent(),
                )
            )
        except Exception as error:
            structlog.get_logger(__name__).error(
                "event publish failed", event_type=event_type, error=repr(error)
            )
