"""Notifier delivery: 1,000 events, publish to Slack emulator, against a bare consumer baseline.

Run: `python -m benchmarks.notifier` (needs redis-server; loopback only, about 60 s). One
`qontract-gateway notifier` process reads a private Redis as a consumer group and posts to the
Slack emulator (a process of its own, uvloop): 1,000 `slack-usergroups.*` events (every
fourth one a `notify_add_user` DM, the rest one channel line each) published at 200 events/s,
then as one burst. Prints p50/p99 latency from XADD to the emulator receiving the post,
events lost (target p99 <= 1 s, 0 lost), and the CPU time the consuming process spent per
event (from /proc: unlike latency, it hardly moves when other processes load the machine).
The baseline, run the same way in the same run, is a bare loop (XREADGROUP, one httpx POST,
XACK; no formatting, claims, rate buckets or retries). The load average is printed before and
after. The workspace's rate limit is raised for the run: Slack's own limit of chat.postMessage
(about one message per second per channel) would make 750 lines in one channel take 12
minutes; the notifier's count of rate-limit waits is printed to show the bucket did not bind.
"""

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
import uvicorn
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from benchmarks.harness import cpu_seconds, gateway_command, gateway_env, process
from gateway.events import Event
from gateway.events.redis_streams import decode_entry, encode_entry
from gateway.redis import create_redis
from gateway.redis_keys import stream_keys
from tests.emulators.slack import SlackEmulator
from tests.support.ports import free_port
from tests.support.redis_server import PrivateRedis

EVENTS = 1_000
RATE = 200
TOKEN = "xoxb-bench"
CHANNEL = "C1"
USERS = 20
DRAIN_SECONDS = 30.0
POLL_SECONDS = 0.2
NAMESPACE = "bench"


@dataclass(frozen=True)
class Run:
    """What one run of 1,000 events measured."""

    published: int
    received: int
    p50_ms: float
    p99_ms: float
    cpu_ms_per_event: float

    @property
    def lost(self) -> int:
        """Events whose message never reached the emulator."""
        return self.published - self.received


def emulator_state(emulator: SlackEmulator) -> None:
    """One changes channel the bot is in and USERS users to DM."""
    emulator.state.token = TOKEN
    emulator.state.add_channel(CHANNEL, "qontract-changes")
    for n in range(USERS):
        emulator.state.add_user(f"U{n}", f"user{n}", f"user{n}@example.com")


def bench_event(run: int, n: int) -> Event:
    """Event `n` of `run`: a DM every fourth, else a channel line; its tag is in the text."""
    tag = f"r{run}e{n}"
    if n % 4 == 0:
        return Event(
            event_type="slack-usergroups.notify_add_user",
            source="benchmark",
            payload={
                "workspace": "coreos",
                "usergroup": "bench",
                "users": [f"user{n % USERS}"],
                "message": tag,
            },
        )
    return Event(
        event_type="slack-usergroups.update_users",
        source="benchmark",
        payload={
            "workspace": "coreos",
            "usergroup": tag,
            "users_to_add": ["user1"],
            "users_to_remove": [],
        },
    )


def tag_of(text: str) -> str:
    """The run-and-event tag in a posted text."""
    return text.removeprefix("usergroup @").split(":", 1)[0]


async def publish(client: "aioredis.Redis", run: int, rate: int | None) -> dict[str, float]:
    """XADD the run's events at `rate` per second (None: at once); publish time by tag."""
    stream = stream_keys(NAMESPACE).stream
    sent: dict[str, float] = {}
    started = time.monotonic()
    for n in range(EVENTS):
        if rate is not None:
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
        event = bench_event(run, n)
        sent[f"r{run}e{n}"] = time.time()
        await client.xadd(stream, encode_entry(event))  # type: ignore[arg-type]
    return sent


@dataclass(frozen=True)
class Consumer:
    """The process that consumes the events: its pid, and its /metrics URL if it has one."""

    pid: int
    metrics_url: str | None = None


async def measure(
    redis_url: str, slack_url: str, consumer: Consumer, run: int, rate: int | None
) -> Run:
    """Publish one run and wait (bounded) until every message reached the emulator."""
    cpu_before = cpu_seconds(consumer.pid)
    client = create_redis(redis_url)
    try:
        sent = await publish(client, run, rate)
    finally:
        await client.aclose()
    async with httpx.AsyncClient(base_url=slack_url) as http:

        async def arrived() -> dict[str, float]:
            response = await http.get("/bench/arrived", params={"prefix": f"r{run}e"})
            found: dict[str, float] = response.json()
            return found

        found = await arrived()
        for _ in range(int(DRAIN_SECONDS / POLL_SECONDS)):
            if len(found) >= EVENTS:
                break
            await asyncio.sleep(POLL_SECONDS)
            found = await arrived()
    cpu_ms = (cpu_seconds(consumer.pid) - cpu_before) * 1000 / EVENTS
    latencies = sorted(at - sent[tag] for tag, at in found.items())
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return Run(EVENTS, len(latencies), cuts[49] * 1000, cuts[98] * 1000, cpu_ms)


def serve_emulator(port: int) -> None:
    """The Slack emulator, plus `/bench/arrived?prefix=`: arrival time by tag (a message may
    hold several lines, each with its tag), on `port`."""
    emulator = SlackEmulator()
    emulator_state(emulator)

    async def arrived(request: Request) -> JSONResponse:
        prefix = request.query_params.get("prefix", "")
        return JSONResponse(
            {
                tag: message["at"]
                for message in emulator.state.messages
                for line in message["text"].split("\n")
                if (tag := tag_of(line)).startswith(prefix)
            }
        )

    app = Starlette(routes=[Route("/bench/arrived", arrived), Mount("/", app=emulator.app)])
    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", log_level="warning")


@contextlib.contextmanager
def emulator_process() -> Iterator[str]:
    """`serve_emulator` as a process of its own; its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [*gateway_command()[:-1], "benchmarks.notifier", "--emulator", str(port)]
    with process(command, gateway_env("", {}), f"{url}/bench/arrived"):
        yield url


@contextlib.contextmanager
def notifier_process(redis_url: str, slack_url: str) -> Iterator[Consumer]:
    """`qontract-gateway notifier` on this checkout, ready."""
    port = free_port()
    settings = {
        "upstreams": {
            "slack": [
                {
                    "name": "coreos",
                    "api_url": f"{slack_url}/api",
                    "token": {"env": "QGW_BENCH_SLACK_TOKEN"},
                    "rate_limit": {"requests": 600_000, "per_seconds": 60, "burst": 1_000},
                }
            ]
        },
        "events": {"block_ms": 100},
        "notifier": {"channels": {"coreos": CHANNEL}},
    }
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "notifier.yaml"
        config.write_text(yaml.safe_dump(settings))
        command = gateway_command("notifier", "--config", str(config), "--port", str(port))
        env = gateway_env(redis_url, {"QGW_BENCH_SLACK_TOKEN": TOKEN})
        with process(command, env, f"http://127.0.0.1:{port}/readyz") as child:
            yield Consumer(child.pid, f"http://127.0.0.1:{port}/metrics")


@contextlib.contextmanager
def baseline_process(redis_url: str, slack_url: str) -> Iterator[Consumer]:
    """The bare consumer loop of `--baseline`, as a process of its own."""
    ready = Path(tempfile.mkdtemp()) / "ready"
    command = [
        *gateway_command()[:-1],
        "benchmarks.notifier",
        "--baseline",
        redis_url,
        slack_url,
        str(ready),
    ]
    with process(command, gateway_env(redis_url, {}), ready.exists) as child:
        yield Consumer(child.pid)


async def bare_loop(redis_url: str, slack_url: str, ready: Path) -> None:
    """XREADGROUP, one POST per event (a DM straight to the user id), XACK; nothing else."""
    client = create_redis(redis_url, socket_timeout=5.0)
    stream = stream_keys(NAMESPACE).stream
    with contextlib.suppress(Exception):
        await client.xgroup_create(stream, "bare", id="$", mkstream=True)
    await asyncio.to_thread(ready.touch)
    async with httpx.AsyncClient(
        base_url=f"{slack_url}/api", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as http:
        while True:
            response: Any = await client.xreadgroup("bare", "b", {stream: ">"}, count=10, block=100)
            for _stream, entries in response or ():
                for entry_id, fields in entries:
                    event = decode_entry(fields)
                    payload = event.payload
                    if "message" in payload:
                        args = {
                            "channel": f"U{payload['users'][0][4:]}",
                            "text": payload["message"],
                        }
                    else:
                        args = {"channel": CHANNEL, "text": f"usergroup @{payload['usergroup']}:"}
                    (await http.post("/chat.postMessage", data=args)).raise_for_status()
                    await client.xack(stream, "bare", entry_id)


def rate_limit_waits(metrics_url: str) -> float:
    """How often the notifier waited for a rate-limit token (0: the bucket never bound)."""
    text = httpx.get(metrics_url, timeout=10).text
    pattern = re.compile(r"^qontract_gateway_ratelimit_waits_total(?:{[^}]*})? ([0-9.e+]+)$", re.M)
    return sum(float(value) for value in pattern.findall(text))


def run_all(redis_url: str) -> tuple[dict[str, dict[str, Run]], float]:
    """Paced and burst runs through the notifier, then through the bare loop; and how often
    the notifier waited for a rate-limit token."""
    results: dict[str, dict[str, Run]] = {}
    waits = 0.0
    with emulator_process() as slack_url:
        for name, start in (("notifier", notifier_process), ("baseline", baseline_process)):
            offset = len(results) * 10
            with start(redis_url, slack_url) as consumer:
                asyncio.run(measure(redis_url, slack_url, consumer, offset, RATE))  # warm-up
                results[name] = {
                    "paced": asyncio.run(measure(redis_url, slack_url, consumer, offset + 1, RATE)),
                    "burst": asyncio.run(measure(redis_url, slack_url, consumer, offset + 2, None)),
                }
                if consumer.metrics_url is not None:
                    waits = rate_limit_waits(consumer.metrics_url)
    return results, waits


def load_average() -> str:
    """The 1, 5 and 15 minute load averages of the machine."""
    return ", ".join(f"{load:.1f}" for load in os.getloadavg())


def main() -> None:
    """Measure, or (with --baseline) run the bare loop."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", nargs=3, metavar=("REDIS_URL", "SLACK_URL", "READY"))
    parser.add_argument("--emulator", type=int, metavar="PORT")
    args = parser.parse_args()
    if args.emulator:
        serve_emulator(args.emulator)
        return
    if args.baseline:
        redis_url, slack_url, ready = args.baseline
        asyncio.run(bare_loop(redis_url, slack_url, Path(ready)))
        return
    load_before = load_average()
    with PrivateRedis() as redis:
        results, waits = run_all(redis.url)
    print(f"notifier delivery, {EVENTS} events (3/4 channel lines, 1/4 DMs), one process")
    print(f"  load average before {load_before}, after {load_average()} (2 cores shared)")
    for mode, label in (("paced", f"at {RATE}/s"), ("burst", "as one burst")):
        ours, bare = results["notifier"][mode], results["baseline"][mode]
        print(
            f"  {label:>13}: p50 {ours.p50_ms:7.1f} ms, p99 {ours.p99_ms:7.1f} ms, "
            f"{ours.lost} lost, {ours.cpu_ms_per_event:.2f} ms CPU/event "
            f"(target p99 <= 1000 ms, 0 lost; {ours.p99_ms / 1000:.2f} x target)"
        )
        print(
            f"  {'baseline':>13}: p50 {bare.p50_ms:7.1f} ms, p99 {bare.p99_ms:7.1f} ms, "
            f"{bare.lost} lost, {bare.cpu_ms_per_event:.2f} ms CPU/event; notifier / baseline: "
            f"p99 {ours.p99_ms / bare.p99_ms:.2f} x, "
            f"CPU {ours.cpu_ms_per_event / bare.cpu_ms_per_event:.2f} x"
        )
    print(f"  the notifier waited for a rate-limit token {waits:.0f} times")


if __name__ == "__main__":
    main()
