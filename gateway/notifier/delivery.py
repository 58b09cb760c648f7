"""Delivering events' messages to Slack, each at most once, and the notifier's counters."""

import asyncio
import hashlib
from collections.abc import Mapping, Sequence

import redis.asyncio as aioredis
import structlog
from prometheus_client import CollectorRegistry, Counter
from redis.exceptions import RedisError

from gateway.errors import GatewayError, Timeout, redis_unavailable
from gateway.events import ReceivedEvent
from gateway.notifier.messages import DIRECT_MESSAGE_TYPES, LINE_FORMATTERS, Message, messages
from gateway.redis_keys import NotifierKeys
from gateway.registry import Sources
from resolvers.slack.chat import SlackChat
from resolvers.slack.source import SlackSource

SENDING = b"sending"
SENT = b"sent"
KNOWN_TYPES = frozenset(LINE_FORMATTERS) | DIRECT_MESSAGE_TYPES
Conversation = tuple[str, str | None, str | None]
"""Where a message goes: workspace, channel, user (one of the two set)."""


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
    """Turns each batch of delivered events into Slack messages; reports the events not posted.

    A message is claimed in Redis (`sending`) just before it is posted and marked `sent` after
    Slack accepted it, so a redelivery skips it. A claim left by a failure that may have posted
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

    async def deliver(self, batch: Sequence[ReceivedEvent]) -> dict[str, GatewayError]:
        """Send every message of `batch`: one conversation's in event order, different
        conversations at once. Returns the first error of each delivery not fully posted (it is
        retried; after its last allowed attempt it is counted as dead-lettered)."""
        conversations: dict[Conversation, list[tuple[ReceivedEvent, Message]]] = {}
        for received in batch:
            self.metrics.received.labels(event_type_label(received.event.event_type)).inc()
            for message in messages(received.event, self.channels):
                conversation = (message.workspace, message.channel, message.user)
                conversations.setdefault(conversation, []).append((received, message))
        failures: dict[str, GatewayError] = {}
        outcomes = await asyncio.gather(
            *(self._send_in_order(queue, failures) for queue in conversations.values()),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome  # a bug: the whole batch is retried
        for received in batch:
            if received.delivery_id in failures and received.delivery_count >= self.max_deliveries:
                self.metrics.dead_lettered.labels(event_type_label(received.event.event_type)).inc()
        return failures

    async def _send_in_order(
        self, queue: list[tuple[ReceivedEvent, Message]], failures: dict[str, GatewayError]
    ) -> None:
        """Post one conversation's messages one after the other, noting failures by delivery."""
        unmarked: list[str] = []
        for received, message in queue:
            try:
                await self._send_once(received.event.id, message, unmarked)
            except GatewayError as error:
                self.metrics.failed.labels(kind(message)).inc()
                self.log.warning(
                    "notification not posted",
                    event_id=received.event.id,
                    event_type=received.event.event_type,
                    workspace=message.workspace,
                    delivery_count=received.delivery_count,
                    error=error.message,
                )
                failures.setdefault(received.delivery_id, error)
        if unmarked:
            try:
                await self._mark_sent(unmarked, None)
            except GatewayError as error:
                self.log.warning(
                    "posted notifications not marked sent; they are never posted again",
                    error=error.message,
                )

    async def _send_once(self, event_id: str, message: Message, unmarked: list[str]) -> None:
        """Claim, post and note `message` as posted; `unmarked` (posted, not yet marked `sent`)
        are marked in the claim's round trip."""
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
        if not await self._mark_sent(unmarked, marker):
            await self._skip(event_id, message, marker)
            return
        try:
            await self._post(message)
        except GatewayError as error:
            if not maybe_posted(error):
                await self._release(marker)
            raise
        unmarked.append(marker)
        self.metrics.posted.labels(kind(message)).inc()

    async def _mark_sent(self, posted: list[str], claim: str | None) -> bool:
        """Mark the `posted` markers `sent` and take `claim` (if any) in one round trip; True
        when `claim` was taken. `posted` is emptied once marked."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for marker in posted:
                    pipe.set(marker, SENT, ex=self.sent_ttl)
                if claim is not None:
                    pipe.set(claim, SENDING, nx=True, ex=self.sent_ttl)
                replies = await pipe.execute()
        except RedisError as error:
            raise redis_unavailable(error, "notifier's sent markers") from error
        posted.clear()
        return claim is not None and bool(replies[-1])

    async def _release(self, marker: str) -> None:
        """Drop a claim whose message was surely not posted, so a redelivery posts it."""
        try:
            await self.redis.delete(marker)
        except RedisError as error:
            raise redis_unavailable(error, "notifier's sent markers") from error

    async def _skip(self, event_id: str, message: Message, marker: str) -> None:
        """A message claimed before: sent (nothing to do), or maybe sent (counted, logged)."""
        try:
            state = await self.redis.get(marker)
        except RedisError as error:
            raise redis_unavailable(error, "notifier's sent markers") from error
        if state == SENDING:
            self.metrics.unconfirmed.labels(kind(message)).inc()
            self.log.warning(
                "notification not sent again: an earlier attempt may have posted it",
                event_id=event_id,
                workspace=message.workspace,
            )

    async def _post(self, message: Message) -> None:
        chat = SlackChat(self.sources.get(SlackSource, message.workspace))
        if message.user is not None:
            await chat.to_user(message.user, message.text)
        else:
            await chat.to_channel(message.channel or "", message.text)

    def _marker(self, event_id: str, message_key: str) -> str:
        digest = hashlib.sha256(f"{self.group}\0{event_id}\0{message_key}".encode()).hexdigest()
        return NotifierKeys(self.namespace).sent(digest)
