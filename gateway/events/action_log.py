"""The events of one reconcile run: `<prefix>.<action>` types, published without ever raising."""

from collections.abc import Mapping
from typing import Any

import structlog

from gateway.events.base import EventPublisher
from gateway.events.model import Event
from gateway.tracing import current_traceparent

EVENT_SOURCE = "qontract-gateway"


class ActionLog:
    """Publishes a reconciler's events; a failing publisher is logged, never raised.

    `origin` (a task's `task_id` and its submitting `request_id`) joins every payload.
    """

    def __init__(
        self, publisher: EventPublisher, prefix: str, origin: Mapping[str, str] | None = None
    ) -> None:
        self.publisher = publisher
        self.prefix = prefix
        self.origin = dict(origin or {})

    async def publish(self, name: str, payload: dict[str, Any]) -> None:
        """Publish `<prefix>.<name>` with `payload` (and the run's origin)."""
        event_type = f"{self.prefix}.{name}"
        try:
            await self.publisher.publish(
                Event(
                    event_type=event_type,
                    source=EVENT_SOURCE,
                    payload={**payload, **self.origin},
                    traceparent=current_traceparent(),
                )
            )
        except Exception as error:
            structlog.get_logger(__name__).error(
                "event publish failed", event_type=event_type, error=repr(error)
            )
