"""Events over GraphQL: live and durable subscriptions, acknowledgement, limits, restarts, sink."""

import asyncio
import io
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import redis
from prometheus_client import CollectorRegistry

from gateway.auth import mint_token
from gateway.events import Event, EventMetrics, EventPublisher, create_event_publisher
from gateway.redis import create_redis
from gateway.redis_keys import stream_keys
from reconcile_client.config import GatewayEndpoint
from reconcile_client.event_log_sink import run_event_log_sink
from reconcile_client.gateway_client import GatewayClient
from tests.support.graphql_ws import GraphQLWebSocket
from tests.support.server_thread import ServerThread
from tests.support.wait import async_wait_until

SECRET = "test-secret-not-for-production-0123456789"
FIELDS = "id event_type source payload stream_id delivery_count"
LIVE = f"subscription L($types: [String!], $since: String) {{ events_v1(types: $types, since: $since) {{ {FIELDS} }} }}"  # noqa: E501
DURABLE = f"subscription D($group: String!, $consumer: String!, $types: [String!]) {{ events_durable_v1(group: $group, consumer: $consumer, types: $types) {{ {FIELDS} }} }}"  # noqa: E501
ACK = "mutation A($group: String!, $ids: [String!]!) { events_ack_v1(group: $group, ids: $ids) }"


@pytest.fixture
async def publisher(redis_url: str, namespace: str) -> AsyncIterator[EventPublisher]:
    """Publishes into the stream the test's gateways read (as another replica would)."""
    client = create_redis(redis_url)
    yield create_event_publisher(
        "redis",
        metrics=EventMetrics(CollectorRegistry()),
        redis_client=client,
        namespace=namespace,
    )
    await client.aclose()


@pytest.fixture
def pending(redis_url: str, namespace: str) -> Callable[[str], int]:
    """How many deliveries of a consumer group are not acknowledged."""
    client = redis.Redis.from_url(redis_url)

    def count(group: str) -> int:
        return int(client.xpending(stream_keys(namespace).stream, group)["pending"])

    return count


async def publish(
    publisher: EventPublisher, event_type: str, n: int = 1, **payload: Any
) -> list[str]:
    """Publish `n` events of `event_type`; their stream ids."""
    ids = []
    for index in range(n):
        event = Event(event_type=event_type, source="test", payload={"n": index, **payload})
        stream_id = await publisher.publish(event)
        assert stream_id is not None
        ids.append(stream_id)
    return ids


def live_subscribers(server: ServerThread) -> float:
    """The gateway's live subscriber gauge, read from /metrics."""
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    found = re.search(r"^qontract_gateway_events_live_subscribers ([\d.]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


async def until_subscribed(server: ServerThread, count: int) -> None:
    """Wait until the gateway feeds `count` live subscribers."""

    async def ready() -> bool:
        return live_subscribers(server) >= count

    await async_wait_until(ready, 10, f"{count} live subscribers")


def ack(server: ServerThread, group: str, ids: list[str], token: str | None = None) -> Any:
    """Call events_ack_v1 over HTTP; the response body."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(
        f"{server.url}/graphql",
        json={"query": ACK, "variables": {"group": group, "ids": ids}},
        headers=headers,
        timeout=10,
    )
    return response.json()


async def test_live_subscriber_receives_only_the_types_it_asked_for(
    gateway: ServerThread,
    publisher: EventPublisher,
) -> None:
    client = await GraphQLWebSocket.open(gateway.url)
    operation = await client.subscribe(LIVE, {"types": ["alpha.changed"]})
    await until_subscribed(gateway, 1)

    await publish(publisher, "beta.changed", 3)
    wanted = await publish(publisher, "alpha.changed", 3)
    await publish(publisher, "beta.changed", 1)
    last = await publish(publisher, "alpha.changed", 1)

    received = await client.events(operation, 4)
    assert [e["stream_id"] for e in received] == wanted + last
    assert {e["event_type"] for e in received} == {"alpha.changed"}
    assert received[0]["payload"] == '{"n":0}'
    await client.close()


async def test_since_replays_retained_events_then_continues_live(
    gateway: ServerThread,
    publisher: EventPublisher,
) -> None:
    earlier = await publish(publisher, "alpha.changed", 5)
    client = await GraphQLWebSocket.open(gateway.url)
    operation = await client.subscribe(LIVE, {"since": earlier[1]})
    replayed = await client.events(operation, 3)
    later = await publish(publisher, "alpha.changed", 2)

    followed = await client.events(operation, 2)
    assert [e["stream_id"] for e in replayed + followed] == earlier[2:] + later
    await client.close()


async def test_durable_listener_gets_exactly_what_it_missed_while_away(
    gateway: ServerThread,
    publisher: EventPublisher,
    pending: Callable[[str], int],
) -> None:
    variables = {"group": "audit", "consumer": "sink-1"}
    first = await GraphQLWebSocket.open(gateway.url)
    operation = await first.subscribe(DURABLE, variables)
    before = await publish(publisher, "alpha.changed", 3)
    received = await first.events(operation, 3)
    assert (ack(gateway, "audit", before))["data"] == {"events_ack_v1": 3}
    await first.close()

    missed = await publish(publisher, "alpha.changed", 4)
    second = await GraphQLWebSocket.open(gateway.url)
    operation = await second.subscribe(DURABLE, variables)
    again = await second.events(operation, 4)
    assert [e["stream_id"] for e in received] == before
    assert [e["stream_id"] for e in again] == missed
    assert (ack(gateway, "audit", missed))["data"] == {"events_ack_v1": 4}
    assert pending("audit") == 0
    await second.close()


async def test_unacknowledged_delivery_goes_to_another_consumer_after_the_visibility_timeout(
    gateway_factory: Callable[..., ServerThread],
    publisher: EventPublisher,
    pending: Callable[[str], int],
) -> None:
    gateway = gateway_factory(events={"visibility_timeout": 0.5})
    lazy = await GraphQLWebSocket.open(gateway.url)
    lazy_operation = await lazy.subscribe(DURABLE, {"group": "workers", "consumer": "lazy"})
    [stream_id] = await publish(publisher, "alpha.changed")
    [never_acked] = await lazy.events(lazy_operation, 1)
    await lazy.close()

    diligent = await GraphQLWebSocket.open(gateway.url)
    operation = await diligent.subscribe(DURABLE, {"group": "workers", "consumer": "diligent"})
    [redelivered] = await diligent.events(operation, 1)
    assert never_acked["stream_id"] == redelivered["stream_id"] == stream_id
    # at least the lazy consumer's delivery and this one; on a loaded machine the lazy reader
    # may have reclaimed it once more before its socket closed
    assert redelivered["delivery_count"] >= 2
    assert (ack(gateway, "workers", [stream_id]))["data"] == {"events_ack_v1": 1}
    assert pending("workers") == 0
    await diligent.close()


async def test_events_need_the_events_scope(
    gateway_factory: Callable[..., ServerThread],
) -> None:
    gateway = gateway_factory(auth={"secret": SECRET})
    reader = mint_token(SECRET, "reader", ["read"], expires_days=1)
    client = await GraphQLWebSocket.open(gateway.url, reader)
    refused = await client.message(await client.subscribe(LIVE))
    durable = await client.message(await client.subscribe(DURABLE, {"group": "g", "consumer": "c"}))
    for message in (refused, durable):
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "FORBIDDEN", message
    body = ack(gateway, "g", ["1-0"], reader)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    await client.close()

    allowed = mint_token(SECRET, "listener", ["events"], expires_days=1)
    listener = await GraphQLWebSocket.open(gateway.url, allowed)
    await listener.subscribe(LIVE)
    await until_subscribed(gateway, 1)
    await listener.close()


async def test_subscriptions_per_connection_are_capped(
    gateway_factory: Callable[..., ServerThread],
) -> None:
    gateway = gateway_factory(limits={"max_subscriptions_per_connection": 2})
    client = await GraphQLWebSocket.open(gateway.url)
    for _ in range(2):
        await client.subscribe(LIVE)
    await until_subscribed(gateway, 2)
    third = await client.message(await client.subscribe(LIVE))
    assert third["type"] == "error"
    assert "limit" in third["payload"][0]["message"]
    assert live_subscribers(gateway) == 2
    await client.close()


async def test_a_stalled_listener_is_dropped_with_queue_full_while_a_fast_one_gets_everything(
    gateway_factory: Callable[..., ServerThread],
    publisher: EventPublisher,
) -> None:
    gateway = gateway_factory(events={"fanout_queue_size": 50})
    fast = await GraphQLWebSocket.open(gateway.url)
    fast_operation = await fast.subscribe(LIVE)
    stalled = await GraphQLWebSocket.open(gateway.url, receive_buffer=4096, read=False)
    stalled_operation = await stalled.subscribe(LIVE)
    await until_subscribed(gateway, 2)

    published: list[str] = []
    while live_subscribers(gateway) == 2:
        assert len(published) < 5_000, "the stalled listener was never dropped"
        published += await publish(publisher, "alpha.changed", 25, filler="x" * 8_000)
        await fast.events(fast_operation, 25)
    published += await publish(publisher, "alpha.changed", 25, filler="x" * 8_000)
    assert len(await fast.events(fast_operation, 25)) == 25

    stalled.start_reading()
    seen: list[str] = []
    while (message := await stalled.message(stalled_operation))["type"] == "next":
        if message["payload"].get("errors"):
            break
        seen.append(message["payload"]["data"]["events_v1"]["stream_id"])
    error = message["payload"]["errors"][0]
    assert error["extensions"]["code"] == "SUBSCRIPTION_DROPPED"
    assert error["extensions"]["reason"] == "queue_full"
    assert error["extensions"]["last_id"] == seen[-1]
    assert seen == published[: len(seen)]
    assert (await stalled.message(stalled_operation))["type"] == "complete"
    await fast.close()
    await stalled.close()


async def test_shutdown_closes_live_subscriptions_instead_of_hanging(
    gateway_factory: Callable[..., ServerThread],
) -> None:
    gateway = gateway_factory()
    client = await GraphQLWebSocket.open(gateway.url)
    operation = await client.subscribe(LIVE)
    await until_subscribed(gateway, 1)
    gateway.stop()
    ended = await client.message(operation, timeout=10)
    assert ended["type"] in ("complete", "closed")
    await async_wait_until(_is_set(client), 10, "the socket to close")
    assert client.close_code in (1000, 1001, 1012)


def _is_set(client: GraphQLWebSocket) -> Callable[[], Any]:
    async def closed() -> bool:
        return client.closed.is_set()

    return closed


async def test_durable_listener_loses_nothing_across_a_gateway_restart(
    gateway_factory: Callable[..., ServerThread],
    publisher: EventPublisher,
    pending: Callable[[str], int],
) -> None:
    settings = {"events": {"visibility_timeout": 0.5}}
    variables = {"group": "restart", "consumer": "sink"}
    first = gateway_factory(**settings)
    client = await GraphQLWebSocket.open(first.url)
    operation = await client.subscribe(DURABLE, variables)
    before = await publish(publisher, "alpha.changed", 4)
    received = await client.events(operation, 4)
    ack(first, "restart", before[:2])
    first.stop()
    await async_wait_until(_is_set(client), 10, "the first gateway to close the socket")

    during = await publish(publisher, "alpha.changed", 3)
    second = gateway_factory(**settings)
    client = await GraphQLWebSocket.open(second.url)
    operation = await client.subscribe(DURABLE, variables)
    after_restart = await client.events(operation, 5, timeout=15)
    delivered = {e["stream_id"] for e in received[2:] + after_restart}
    assert delivered == set(before[2:] + during)
    assert (ack(second, "restart", sorted(delivered)))["data"] == {"events_ack_v1": 5}
    assert pending("restart") == 0
    await client.close()


class CheckedOutput(io.StringIO):
    """An output that records, at each flush, whether the flushed event was still pending."""

    def __init__(self, client: "redis.Redis", stream: str, group: str) -> None:
        super().__init__()
        self.client, self.stream, self.group = client, stream, group
        self.pending_at_flush: list[bool] = []

    def flush(self) -> None:
        """Flush, and note whether the last line's delivery is still unacknowledged."""
        super().flush()
        last = self.getvalue().splitlines()[-1]
        stream_id = re.search(r'"stream_id":"([\d-]+)"', last)
        assert stream_id is not None
        entries = self.client.xpending_range(
            self.stream,
            self.group,
            stream_id.group(1),
            stream_id.group(1),
            1,
        )
        self.pending_at_flush.append(bool(entries))


@pytest.mark.parametrize("dry_run", [False, True])
async def test_event_log_sink_writes_json_lines_and_acks_only_after_writing(
    gateway_factory: Callable[..., ServerThread],
    publisher: EventPublisher,
    redis_url: str,
    namespace: str,
    pending: Callable[[str], int],
    dry_run: bool,
) -> None:
    gateway = gateway_factory(auth={"secret": SECRET})
    token = mint_token(SECRET, "event-log-sink", ["events"], expires_days=1)
    published = await publish(publisher, "alpha.changed", 3)
    await publish(publisher, "beta.changed", 2)
    output = CheckedOutput(redis.Redis.from_url(redis_url), stream_keys(namespace).stream, "log")

    client = GatewayClient(GatewayEndpoint(url=f"{gateway.url}/graphql", token=token))
    try:
        result = await run_event_log_sink(
            client,
            "log",
            "sink-1",
            types=["alpha.changed"],
            dry_run=dry_run,
            output=output,
            max_events=3,
        )
    finally:
        await client.aclose()
    lines = [line for line in output.getvalue().splitlines() if line]
    assert [line.count('"event_type":"alpha.changed"') for line in lines] == [1, 1, 1]
    assert [re.search(r'"stream_id":"([\d-]+)"', line).group(1) for line in lines] == published  # type: ignore[union-attr]
    assert '"payload":{"n":0}' in lines[0]
    assert output.pending_at_flush == [True, True, True]
    assert result.written == 3
    assert result.acknowledged == (0 if dry_run else 3)
    assert pending("log") == (3 if dry_run else 0)


async def test_event_log_sink_command_prints_events_and_acknowledges_them(
    gateway: ServerThread,
    publisher: EventPublisher,
    pending: Callable[[str], int],
) -> None:
    await publish(publisher, "alpha.changed", 2)
    env = {**os.environ, "QONTRACT_RECONCILE_API_GATEWAY__URL": f"{gateway.url}/graphql"}
    command = [
        "-m",
        "reconcile_client",
        "--no-dry-run",
        "event-log-sink",
        "--group",
        "cli",
        "--consumer",
        "c1",
    ]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *command,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(20):
            lines = [await process.stdout.readline(), await process.stdout.readline()]
        assert [json.loads(line)["payload"]["n"] for line in lines] == [0, 1]

        async def acknowledged() -> bool:
            return pending("cli") == 0

        await async_wait_until(acknowledged, 10, "the sink to acknowledge both events")
    finally:
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(20):
            await process.wait()
