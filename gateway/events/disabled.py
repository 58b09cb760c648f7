"""The publisher used when events are switched off (`events.enabled = false`)."""

from gateway.events.model import Event


class DisabledPublisher:
    """Accepts every event and publishes none of them."""

    async def publish(self, event: Event) -> str | None:
        """Drop `event`; there is never a message id."""
        return None

    async def close(self) -> None:
        """Nothing to release."""
