"""Subscription delivery: 50 WebSocket listeners on one gateway worker, publish-to-receive latency.

Run: `python -m benchmarks.events` (needs redis-server; loopback only, about 40 s). One
`qontract-gateway serve` worker; 50 graphql-transport-ws listeners, each subscribed to its own
event type; a publisher XADDs 1,000 events/s in total (spread over the 50 types, so 1,000
deliveries/s) for 10 s with its clock in the payload. Prints p50/p99 publish-to-receive latency
and lost events (target p99 <= 20 ms, 0 lost), then ramps the rate to find the deliveries/s
one worker sustains. Listeners and publisher share one process and the machine's cores with
the gateway, so the latencies include the client's own scheduling.
"""

import asyncio
import contextlib
import gc
import json
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection, connect

from benchmarks.harness import gateway
from gateway.events import Event
from gateway.events.redis_streams import encode_entry
from gateway.redis import create_redis
from gateway.redis_keys import stream_keys
from tests.support.redis_server import PrivateRedis

LISTENERS = 50
STEADY_RATE, STEADY_SECONDS = 1_000, 10
RAMP_RATES, RAMP_SECONDS = (2_000, 4_000, 8_000, 16_000), 3
TICK = 0.01
DRAIN_SECONDS = 5.0
SUBSCRIPTION = (
    "subscription B($types: [String!]) { events_v1(types: $types) { payload stream_id } }"
)


@dataclass
class Received:
    """Latencies (seconds) of every delivery since the last reset."""

    latencies: list[float] = field(default_factory=list)
    expected: int | None = None
    complete: asyncio.Event = field(default_factory=asyncio.Event)

    def reset(self) -> None:
        """Forget what was received so far."""
        self.latencies = []
        self.expected = None
        self.complete.clear()

    def add(self, latency: float) -> None:
        """Record one delivery."""
        self.latencies.append(latency)
        self.check()

    def check(self) -> None:
        """Signal `complete` once every expected delivery arrived."""
        if self.expected is not None and len(self.latencies) >= self.expected:
            self.complete.set()


@dataclass(frozen=True)
class Run:
    """What one publishing run measured."""

    rate: int
    published: int
    received: int
    delivered_per_second: float
    p50_ms: float
    p99_ms: float

    @property
    def lost(self) -> int:
        """Published events no listener received."""
        return self.published - self.received


async def listen(
    url: str,
    index: int,
    received: Received,
    readers: set["asyncio.Task[None]"],
) -> ClientConnection:
    """One listener for event type `bench.l<index>`; records latencies as events arrive."""
    socket = await connect(
        url,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        proxy=None,
        max_size=None,
    )
    await socket.send(json.dumps({"type": "connection_init", "payload": {}}))
    assert json.loads(await socket.recv())["type"] == "connection_ack"
    await socket.send(
        json.dumps(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": SUBSCRIPTION, "variables": {"types": [f"bench.l{index}"]}},
            }
        )
    )

    async def read() -> None:
        async for raw in socket:
            now = time.time()
            message = json.loads(raw)
            if message["type"] == "next":
                payload = json.loads(message["payload"]["data"]["events_v1"]["payload"])
                received.add(now - payload["t"])
            elif message["type"] == "ping":
                await socket.send(json.dumps({"type": "pong"}))

    readers.add(asyncio.create_task(read()))
    return socket


async def publish_at(redis_url: str, rate: int, seconds: float) -> int:
    """XADD `rate` events/s over the listeners' types for `seconds`; how many were added."""
    client = create_redis(redis_url)
    stream = stream_keys("bench").stream
    per_tick = max(1, round(rate * TICK))
    published = 0
    started = time.monotonic()
    try:
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed / TICK) * per_tick + per_tick
            pipe = client.pipeline(transaction=False)
            for n in range(published, due):
                event = Event(
                    event_type=f"bench.l{n % LISTENERS}",
                    source="benchmark",
                    payload={"t": time.time(), "n": n},
                )
                pipe.xadd(stream, encode_entry(event))  # type: ignore[arg-type]
            await pipe.execute()
            published = due
            next_tick = started + (int(elapsed / TICK) + 1) * TICK
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
    finally:
        await client.aclose()
    return published


async def measure(redis_url: str, rate: int, seconds: float, received: Received) -> Run:
    """Publish at `rate` and wait (bounded) until every event arrived or the drain time ends."""
    received.reset()
    started = time.monotonic()
    published = await publish_at(redis_url, rate, seconds)
    received.expected = published
    received.check()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(received.complete.wait(), DRAIN_SECONDS)
    elapsed = time.monotonic() - started
    latencies = sorted(received.latencies)
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return Run(
        rate=rate,
        published=published,
        received=len(latencies),
        delivered_per_second=len(latencies) / elapsed,
        p50_ms=quantiles[49] * 1000,
        p99_ms=quantiles[98] * 1000,
    )


def live_subscribers(http_url: str) -> int:
    """The gateway's live subscriber gauge."""
    text = httpx.get(f"{http_url}/metrics", timeout=5).text
    found = re.search(r"^qontract_gateway_events_live_subscribers ([\d.]+)$", text, re.M)
    return int(float(found.group(1))) if found else 0


async def run(http_url: str, redis_url: str) -> tuple[Run, list[Run]]:
    """The steady run at 1,000/s, then the ramp until delivery stops keeping up."""
    received = Received()
    ws_url = http_url.replace("http://", "ws://") + "/graphql"
    readers: set[asyncio.Task[None]] = set()
    sockets = [await listen(ws_url, index, received, readers) for index in range(LISTENERS)]
    deadline = time.monotonic() + 10
    while live_subscribers(http_url) < LISTENERS:
        assert time.monotonic() < deadline, "listeners did not all subscribe"
        await asyncio.sleep(0.05)
    gc.collect()
    gc.freeze()  # as the gateway does: no gen-2 pauses over long-lived objects in the client
    await measure(redis_url, 200, 1, received)  # warm-up
    steady = await measure(redis_url, STEADY_RATE, STEADY_SECONDS, received)
    ramp: list[Run] = []
    for rate in RAMP_RATES:
        ramp.append(await measure(redis_url, rate, RAMP_SECONDS, received))
        if ramp[-1].lost or ramp[-1].delivered_per_second < 0.9 * rate:
            break
    for socket in sockets:
        await socket.close()
    await asyncio.gather(*readers, return_exceptions=True)
    return steady, ramp


def main() -> None:
    """Start Redis and one gateway worker, measure, print the figures."""
    root = str(Path(__file__).parents[1])
    with PrivateRedis() as redis, gateway(redis.url, {}, {"PYTHONPATH": root}) as url:
        steady, ramp = asyncio.run(run(url, redis.url))
    print(f"subscription delivery, {LISTENERS} listeners on one gateway worker, loopback")
    print(
        f"  steady {steady.rate}/s for {STEADY_SECONDS}s: {steady.published} published, "
        f"{steady.lost} lost, p50 {steady.p50_ms:.2f} ms, p99 {steady.p99_ms:.2f} ms "
        f"(target p99 <= 20 ms = {steady.p99_ms / 20:.2f} x target, 0 lost)"
    )
    print(f"  ramp, {RAMP_SECONDS}s per step (stops at the first step that falls behind):")
    for step in ramp:
        print(
            f"    offered {step.rate:6d}/s: delivered {step.delivered_per_second:8.0f}/s "
            f"({step.delivered_per_second / step.rate:.2f} of offered), "
            f"not received within {DRAIN_SECONDS:.0f} s: {step.lost}, "
            f"p50 {step.p50_ms:8.2f} ms, p99 {step.p99_ms:8.2f} ms"
        )
    ceiling = max(step.delivered_per_second for step in ramp)
    print(
        f"  ceiling of one worker: ~{ceiling:.0f} deliveries/s "
        f"({ceiling / STEADY_RATE:.1f} x the 1,000/s target)"
    )


if __name__ == "__main__":
    main()
