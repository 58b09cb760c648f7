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
from resolvers.slack.chat import MAX_TEXT, SlackChat
from resolvers.slack.source import SlackSource

SENDING = b"sending"
SENT = b"sent"
KNOWN_TYPES = frozenset(LINE_FORMATTERS) | DIRECT_MESSAGE_TYPES
POSTS_AT_ONCE = 16
"""Slack messages claimed and posted at once: fewer than an account's 20 connections, so a
claimed message's request leaves at once (a kill between the two loses that message)."""
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
            prefix + "posted",
            "Channel lines and direct messages Slack accepted.",
            ["kind"],
            registry=registry,
        )
        self.failed = Counter(
            prefix + "failed",
            "Channel lines and direct messages Slack did not accept.",
            ["kind"],
            registry=registry,
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

    The lines of a batch that go to one channel are posted together, up to `lines_per_message`
    per Slack message (Slack takes about one message per second per channel). Each line and
    direct message is claimed in Redis (`sending`) just before it is posted and marked `sent`
    after Slack accepted it, so a redelivery posts only what is missing. A claim left by a
    failure that may have posted (a timeout) or by a process killed mid-send is never posted
    again: at most once, logged and counted as `unconfirmed`. In a dry run nothing is claimed
    or posted, only logged.
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
        lines_per_message: int,
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
        self.lines_per_message = lines_per_message
        self._posting = asyncio.Semaphore(POSTS_AT_ONCE)
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
        unmarked: list[str] = []
        outcomes = await asyncio.gather(
            *(self._send_in_order(queue, failures, unmarked) for queue in conversations.values()),
            return_exceptions=True,
        )
        if unmarked:
            try:
                await self._mark_sent(unmarked, [])
            except GatewayError as error:
                self.log.warning(
                    "posted notifications not marked sent; they are never posted again",
                    error=error.message,
                )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome  # a bug: the whole batch is retried, what was posted is not
        for received in batch:
            if received.delivery_id in failures and received.delivery_count >= self.max_deliveries:
                self.metrics.dead_lettered.labels(event_type_label(received.event.event_type)).inc()
        return failures

    async def _send_in_order(
        self,
        queue: list[tuple[ReceivedEvent, Message]],
        failures: dict[str, GatewayError],
        unmarked: list[str],
    ) -> None:
        """Post one conversation's messages one after the other, noting failures by delivery
        and adding the markers of the last one posted to `unmarked`.

        After a failure the rest are not tried (they fail alike), so a redelivery keeps the order.
        """
        pending: list[str] = []
        failure: GatewayError | None = None
        for chunk in self._chunks(queue):
            if failure is None:
                try:
                    await self._send_once(chunk, pending)
                    continue
                except GatewayError as error:
                    failure = error
            for received, message in chunk:
                self.metrics.failed.labels(kind(message)).inc()
                self.log.warning(
                    "notification not posted",
                    event_id=received.event.id,
                    event_type=received.event.event_type,
                    workspace=message.workspace,
                    delivery_count=received.delivery_count,
                    error=failure.message,
                )
                failures.setdefault(received.delivery_id, failure)
        unmarked.extend(pending)

    def _chunks(
        self, queue: list[tuple[ReceivedEvent, Message]]
    ) -> list[list[tuple[ReceivedEvent, Message]]]:
        """A conversation's messages in Slack messages: channel lines together, up to
        `lines_per_message` lines and MAX_TEXT characters; a direct message alone."""
        chunks: list[list[tuple[ReceivedEvent, Message]]] = []
        size = 0
        for item in queue:
            length = len(item[1].text) + 1
            joins = item[1].user is None and chunks and chunks[-1][0][1].user is None
            if joins and len(chunks[-1]) < self.lines_per_message and size + length <= MAX_TEXT:
                chunks[-1].append(item)
                size += length
            else:
                chunks.append([item])
                size = length
        return chunks

    async def _send_once(
        self, chunk: list[tuple[ReceivedEvent, Message]], unmarked: list[str]
    ) -> None:
        """Claim the chunk's messages, post those not claimed before as one Slack message and
        note them posted; `unmarked` (posted, not yet marked `sent`) are marked in the claim's
        round trip."""
        if self.dry_run:
            for received, message in chunk:
                self.log.info(
                    "dry run: would post",
                    event_id=received.event.id,
                    workspace=message.workspace,
                    channel=message.channel,
                    user=message.user,
                    text=message.text[:500],
                )
            return
        async with self._posting:
            markers = [self._marker(received.event.id, message.key) for received, message in chunk]
            claimed = await self._mark_sent(unmarked, markers)
            sending: list[str] = []
            lines: list[str] = []
            for (received, message), marker, taken in zip(chunk, markers, claimed, strict=True):
                if taken:
                    sending.append(marker)
                    lines.append(message.text)
                else:
                    await self._skip(received.event.id, message, marker)
            if not sending:
                return
            try:
                await self._post(chunk[0][1], "\n".join(lines))
            except GatewayError as error:
                if not maybe_posted(error):
                    await self._release(sending)
                raise
        unmarked.extend(sending)
        self.metrics.posted.labels(kind(chunk[0][1])).inc(len(sending))

    async def _mark_sent(self, posted: list[str], claims: list[str]) -> list[bool]:
        """Mark the `posted` markers `sent` and take the `claims` in one round trip; which
        claims were taken. `posted` is emptied once marked."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for marker in posted:
                    pipe.set(marker, SENT, ex=self.sent_ttl)
                for marker in claims:
                    pipe.set(marker, SENDING, nx=True, ex=self.sent_ttl)
                replies = await pipe.execute()
        except RedisError as error:
            raise redis_unavailable(error, "notifier's sent markers") from error
        posted.clear()
        return [bool(reply) for reply in replies[len(replies) - len(claims) :]]

    async def _release(self, markers: list[str]) -> None:
        """Drop claims whose messages were surely not posted, so a redelivery posts them."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for marker in markers:
                    pipe.delete(marker)
                await pipe.execute()
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

    async def _post(self, message: Message, text: str) -> None:
        """Post `text` where `message` goes."""
        chat = SlackChat(self.sources.get(SlackSource, message.workspace))
        if message.user is not None:
            await chat.to_user(message.user, text)
        else:
            await chat.to_channel(message.channel or "", text)

    def _marker(self, event_id: str, message_key: str) -> str:
        digest = hashlib.sha256(f"{self.group}\0{event_id}\0{message_key}".encode()).hexdigest()
        return NotifierKeys(self.namespace).sent(digest)
