"""Notifier delivery on real parts: Redis consumer group, the gateway's Slack source, emulator."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from gateway.events import (
    Event,
    EventMetrics,
    consume_batches,
    create_event_consumer,
    create_event_publisher,
)
from gateway.notifier.delivery import Notifier, NotifierMetrics
from gateway.notifier.messages import messages
from gateway.redis import create_redis
from gateway.redis_keys import stream_keys
from gateway.registry import Sources
from gateway.runtime import Runtime
from resolvers.systems import SYSTEMS
from tests.emulators.slack import SlackEmulator
from tests.support.gateway import gateway_settings
from tests.support.slack_workspace import coreos_slack
from tests.support.wait import async_wait_until

CHANNELS = {"coreos": "sre"}


def event(event_type: str, **payload: Any) -> Event:
    return Event(event_type=event_type, source="test", payload={"workspace": "coreos", **payload})


def test_each_event_type_has_its_line_and_other_types_a_generic_one() -> None:
    payloads: dict[str, dict[str, Any]] = {
        "create": {"usergroup": "a", "users": ["x"], "channels": []},
        "update_users": {"usergroup": "a", "users_to_add": [], "users_to_remove": ["y"]},
        "update_metadata": {"usergroup": "a", "description": "d", "channels": None},
        "error": {"usergroup": "a", "error": "boom"},
        "later": {"usergroup": "a"},
    }
    lines = {
        kind: messages(event(f"slack-usergroups.{kind}", **payload), CHANNELS)[0].text
        for kind, payload in payloads.items()
    }
    assert lines == {
        "create": "created usergroup @a with users x and channels none",
        "update_users": "usergroup @a: added none, removed y",
        "update_metadata": "usergroup @a: set description 'd'",
        "error": ":warning: usergroup @a: boom",
        "later": "slack-usergroups.later: usergroup=a",
    }


def test_caller_text_cannot_mention_or_link_and_lists_are_bounded() -> None:
    [line] = messages(
        event("slack-usergroups.create", usergroup="<!channel>", users=[str(n) for n in range(50)]),
        CHANNELS,
    )
    assert "<!channel>" not in line.text
    assert "&lt;!channel&gt;" in line.text
    assert "and 30 more" in line.text


def test_notify_events_become_one_direct_message_per_user_and_no_channel_line() -> None:
    found = messages(
        event("slack-usergroups.notify_add_user", users=["a", "b", "a"], message="hi"), CHANNELS
    )
    assert [(m.user, m.channel, m.text) for m in found] == [("a", None, "hi"), ("b", None, "hi")]


def test_events_of_a_workspace_without_a_channel_say_nothing() -> None:
    assert messages(event("slack-usergroups.create", usergroup="a"), {}) == []


@dataclass
class Parts:
    """A Notifier on real parts and the emulator it posts to."""

    notifier: Notifier
    metrics: NotifierMetrics
    registry: CollectorRegistry
    emulator: SlackEmulator
    runtime: Runtime
    namespace: str
    redis_url: str


@pytest.fixture
async def parts(
    redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Parts]:
    with coreos_slack(monkeypatch) as (slack, workspace):
        runtime = Runtime.create(
            gateway_settings(
                redis_url, namespace, upstreams={"slack": [{**workspace, "timeout": 2.0}]}
            )
        )
        sources = Sources.create(runtime, SYSTEMS)
        registry = CollectorRegistry()
        metrics = NotifierMetrics(registry)
        notifier = Notifier(
            sources,
            runtime.redis,
            namespace,
            CHANNELS,
            metrics,
            group="notifier",
            max_deliveries=3,
            sent_ttl=60,
            lines_per_message=2,
        )
        yield Parts(notifier, metrics, registry, slack, runtime, namespace, redis_url)
        await sources.aclose()
        await runtime.aclose()


async def publish(parts: Parts, *events: Event) -> None:
    publisher = create_event_publisher(
        "redis",
        metrics=EventMetrics(CollectorRegistry()),
        redis_client=parts.runtime.redis,
        namespace=parts.namespace,
    )
    for published in events:
        assert await publisher.publish(published) is not None


@contextlib.asynccontextmanager
async def consuming(parts: Parts) -> AsyncIterator[None]:
    """The notifier's handler on a consumer group that retries after 50 ms, for the block."""
    client = create_redis(parts.redis_url, socket_timeout=5.0)
    consumer = create_event_consumer(
        "redis",
        metrics=EventMetrics(parts.registry),
        redis_client=client,
        namespace=parts.namespace,
        group="notifier",
        consumer="test",
        max_deliveries=3,
        block_ms=50,
        visibility_timeout_ms=50,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consume_batches(consumer, parts.notifier.deliver, stop, 10))
    try:
        yield
    finally:
        stop.set()
        await task
        await client.aclose()


def sample(parts: Parts, name: str, **labels: str) -> float:
    return parts.registry.get_sample_value(name, labels) or 0.0


async def test_a_failing_message_is_retried_then_dead_lettered_and_the_accepted_one_sent_once(
    parts: Parts,
) -> None:
    await publish(
        parts,
        event("slack-usergroups.notify_add_user", users=["carol", "ghost"], message="welcome"),
    )
    dead_letters = stream_keys(parts.namespace).dead_letter

    async def dead_lettered() -> bool:
        return bool(await parts.runtime.redis.xlen(dead_letters))

    async with consuming(parts):
        await async_wait_until(dead_lettered, 30, "the event in the dead letters")
    assert parts.emulator.state.direct_messages_to("U4") == ["welcome"]
    assert sample(parts, "qontract_gateway_notifier_posted_total", kind="direct") == 1
    assert sample(parts, "qontract_gateway_notifier_failed_total", kind="direct") == 3
    assert (
        sample(
            parts,
            "qontract_gateway_notifier_dead_lettered_total",
            event_type="slack-usergroups.notify_add_user",
        )
        == 1
    )


async def test_a_post_slack_answered_503_is_retried_and_posted_once(parts: Parts) -> None:
    parts.emulator.fail(status=503, times=1, path_prefix="/api/chat.postMessage")
    await publish(parts, event("slack-usergroups.error", usergroup="a", error="boom"))

    async def posted() -> bool:
        return sample(parts, "qontract_gateway_notifier_posted_total", kind="channel") == 1

    async with consuming(parts):
        await async_wait_until(posted, 30, "the line posted")
    assert parts.emulator.state.messages_in("C1") == [":warning: usergroup @a: boom"]


async def test_lines_read_together_share_slack_messages_in_event_order_each_line_once(
    parts: Parts,
) -> None:
    parts.emulator.fail(status=503, times=1, path_prefix="/api/chat.postMessage")
    await publish(
        parts,
        *(event("slack-usergroups.error", usergroup=name, error="boom") for name in "abc"),
        event("slack-usergroups.notify_add_user", users=["carol"], message="welcome"),
    )

    async def posted() -> bool:
        return sample(parts, "qontract_gateway_notifier_posted_total", kind="channel") == 3

    async with consuming(parts):
        await async_wait_until(posted, 30, "every line posted")
    # two lines a message (lines_per_message), the refused first message posted on redelivery
    assert parts.emulator.state.messages_in("C1") == [
        ":warning: usergroup @a: boom\n:warning: usergroup @b: boom",
        ":warning: usergroup @c: boom",
    ]
    assert parts.emulator.state.direct_messages_to("U4") == ["welcome"]
    assert parts.emulator.total_calls("POST /api/chat.postMessage") == 4


async def test_a_post_that_timed_out_is_not_sent_again(parts: Parts) -> None:
    parts.emulator.state.post_answer_delay = 4.0  # longer than the account's 2 s timeout
    await publish(parts, event("slack-usergroups.error", usergroup="a", error="boom"))

    async def given_up() -> bool:
        return sample(parts, "qontract_gateway_notifier_unconfirmed_total", kind="channel") == 1

    async with consuming(parts):
        await async_wait_until(given_up, 60, "the timed-out line given up")
    assert parts.emulator.state.messages_in("C1") == [":warning: usergroup @a: boom"]
    assert parts.emulator.total_calls("POST /api/chat.postMessage") == 1
