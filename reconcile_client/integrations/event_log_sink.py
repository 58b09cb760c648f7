"""The `event-log-sink` integration: the gateway's events, durably, as JSON lines on stdout."""

from reconcile_client.event_log_sink import run_event_log_sink
from reconcile_client.integration import QontractReconcileApiIntegration
from reconcile_client.params import PydanticRunParams

QONTRACT_INTEGRATION = "event-log-sink"


class EventLogSinkParams(PydanticRunParams):
    """Which consumer group and consumer name to read as, and which event types."""

    group: str
    consumer: str
    types: list[str] | None = None


class EventLogSinkIntegration(QontractReconcileApiIntegration[EventLogSinkParams]):
    """Writes every event delivered to its consumer group; acknowledges only real runs."""

    @property
    def name(self) -> str:
        """`event-log-sink`."""
        return QONTRACT_INTEGRATION

    async def async_run(self, dry_run: bool) -> None:
        """Consume until the gateway closes the subscription (or the process is stopped)."""
        await run_event_log_sink(
            self.gateway,
            self.params.group,
            self.params.consumer,
            types=self.params.types,
            dry_run=dry_run,
        )
