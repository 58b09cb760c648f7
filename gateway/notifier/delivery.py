"""Delivering one event's messages to Slack, each at most once, and the notifier's counters."""

import hashlib
from collections.abc import Mapping

import redis.asyncio as aioredis
import structlog
from prometheus_client import CollectorRegistry, Counter

from gateway.errors import GatewayError, Timeout
from gateway.events import ReceivedEvent
from gateway.notifier.messages import DIRECT_MESSAGE_TYPES, LINE_FORMATTERS, Message, messages
from gateway.redis_keys import NotifierKeys
from gateway.registry import Sources
from resolvers.slack.chat import SlackChat
from resolvers.slack.source import SlackSource

SENDING = b"sending"
SENT = b"sent"
KNOWN_TYPES = frozenset(LINE_FORMATTERS) | DIRECT_MESSAGE_TYPES


class NotifierMetrics:
    """Counters of the notifier process, in the registry its /metrics serves."""

    def __init__(self, registry: CollectorRegistry) -> None:
        prefix = "qontract_gateway_notifier_"
        self.received = Counter(
            prefix + "received", "Event deliveries handled.", ["event_type"], registry=registry
        )
        self.posted = Counter(
            prefix + "posted", "Messages Slack accepted.", ["kind"], registry=registry
        )
        self.failed = Counter(
            prefix + "failed", "Messages Slack did not accept.", ["kind"], registry=registry
        )
        self.dead_lettered = Counter(
            prefix + "dead_lettered",
            "Events given up after their last allowed delivery failed.",
            ["event_type"],
            registry=registry,
        )
        self.unconfirmed = Counter(
            prefix + "unconfirmed",
            "Messages not sent again because an earlier attempt may have posted them.",
            ["kind"],
            registry=registry,
        )


def event_type_label(event_type: str) -> str:
    """A bounded metric label: the event types the notifier formats, else `other`."""
    return event_type if event_type in KNOWN_TYPES else "other"


def kind(message: Message) -> str:
    """`direct` for a direct message, `channel` for a channel line."""
    return "direct" if message.user is not None else "channel"


def maybe_posted(error: Exception) -> bool:
    """True when a failed chat.postMessage may still have been posted: it timed out after it
    was sent. Any answer from Slack (an error, a 429, a 5xx) or no connection means it was not."""
    return isinstance(error, Timeout)


class Notifier:
    """Turns each delivered event into Slack messages; raises if any was not accepted.

    A message is claimed in Redis (`sending`) before it is posted and marked `sent` after Slack
    accepted it, so a redelivery skips it. A claim left by a failure that may have posted
    (a timeout) or by a process killed mid-send is never posted again: at most once, logged
    and counted as `unconfirmed`. In a dry run nothing is claimed or posted, only logged.
    """

    def __init__(
        self,
        sources: Sources,
        redis: "aioredis.Redis",
        namespace: str,
        channels: Mapping[str, str],
        metrics: NotifierMetrics,
        *,
        group: str,
        max_deliveries: int,
        sent_ttl: float,
        dry_run: bool = False,
    ) -> None:
        self.sources = sources
        self.redis = redis
        self.namespace = namespace
        self.group = group
        self.channels = channels
        self.metrics = metrics
        self.max_deliveries = max_deliveries
        self.sent_ttl = int(sent_ttl)
        self.dry_run = dry_run
        self.log = structlog.get_logger(__name__).bind(dry_run=dry_run)

    async def handle(self, received: ReceivedEvent) -> None:
        """Send every message of `received`; the first failure is raised (the event is retried)."""
        event = received.event
        label = event_type_label(event.event_type)
        self.metrics.received.labels(label).inc()
        failure: GatewayError | None = None
        for message in messages(event, self.channels):
            try:
                await self._send_once(event.id, message)
            except GatewayError as error:
                self.metrics.failed.labels(kind(message)).inc()
                self.log.warning(
                    "notification not posted",
                    event_id=event.id,
                    event_type=event.event_type,
                    workspace=message.workspace,
                    delivery_count=received.delivery_count,
                    error=error.message,
                )
                failure = failure or error
        if failure is not None:
            if received.delivery_count >= self.max_deliveries:
                self.metrics.dead_lettered.labels(label).inc()
            raise failure

    async def _send_once(self, event_id: str, message: Message) -> None:
        if self.dry_run:
            self.log.info(
                "dry run: would post",
                event_id=event_id,
                workspace=message.workspace,
                channel=message.channel,
                user=message.user,
                text=message.text[:500],
            )
            return
        marker = self._marker(event_id, message.key)
        if not await self.redis.set(marker, SENDING, nx=True, ex=self.sent_ttl):
            if await self.redis.get(marker) == SENDING:
                self.metrics.unconfirmed.labels(kind(message)).inc()
                self.log.warning(
                    "notification not sent again: an earlier attempt may have posted it",
                    event_id=event_id,
                    workspace=message.workspace,
                )
            return
        try:
            await self._post(message)
        except Exception as error:
            if not maybe_posted(error):
                await self.redis.delete(marker)
            raise
        await self.redis.set(marker, SENT, ex=self.sent_ttl)
        self.metrics.posted.labels(kind(message)).inc()

    async def _post(self, message: Message) -> None:
        chat = SlackChat(self.sources.get(SlackSource, message.workspace))
        if message.user is not None:
            await chat.to_user(message.user, message.text)
        else:
            await chat.to_channel(message.channel or "", message.text)

    def _marker(self, event_id: str, message_key: str) -> str:
        digest = hashlib.sha256(f"{self.group}\0{event_id}\0{message_key}".encode()).hexdigest()
        return NotifierKeys(self.namespace).sent(digest)
