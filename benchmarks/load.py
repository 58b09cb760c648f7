"""A keep-alive HTTP/1.1 load generator on uvloop, for machines without wrk.

It spends about as much CPU per request as a small ASGI app, so on a 2-core machine it caps
what it can measure near 10,000 req/s; every figure is a ratio against a baseline loaded by it
in the same run.
"""

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import uvloop

Bodies = Callable[[int], bytes]


@dataclass(frozen=True)
class Load:
    """What one load run measured."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass
class _Answers:
    """Latencies (seconds) of the requests answered 2xx, and how many were not."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0

    def percentile_ms(self, fraction: float) -> float:
        """The latency (ms) below which `fraction` of the answered requests fell."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _connection(
    host: str,
    port: int,
    path: str,
    bodies: Bodies,
    numbers: "itertools.count[int]",
    deadline: float,
    result: _Answers,
) -> None:
    """One client connection sending requests one after another until `deadline`."""
    reader, writer = await asyncio.open_connection(host, port)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()
    try:
        while time.perf_counter() < deadline:
            body = bodies(next(numbers))
            started = time.perf_counter()
            writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
            headers = (await reader.readuntil(b"\r\n\r\n")).lower()
            status = int(headers[9:12])
            length = int(headers.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            await reader.readexactly(length)
            if 200 <= status < 300:
                result.latencies.append(time.perf_counter() - started)
            else:
                result.errors += 1
            if b"connection: close" in headers:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


async def _load(url: str, bodies: Bodies, seconds: float, connections: int) -> _Answers:
    parts = urlsplit(url)
    result = _Answers()
    numbers = itertools.count()
    deadline = time.perf_counter() + seconds
    await asyncio.gather(
        *(
            _connection(
                parts.hostname or "127.0.0.1",
                parts.port or 80,
                parts.path or "/",
                bodies,
                numbers,
                deadline,
                result,
            )
            for _ in range(connections)
        )
    )
    return result


def load(url: str, bodies: Bodies, seconds: float, connections: int = 32) -> Load:
    """POST `bodies(n)` (n = 0, 1, ...) to `url` over `connections` for `seconds`."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        started = time.perf_counter()
        answers = runner.run(_load(url, bodies, seconds, connections))
        elapsed = time.perf_counter() - started
    return Load(
        (len(answers.latencies) + answers.errors) / elapsed,
        answers.percentile_ms(0.5),
        answers.percentile_ms(0.99),
        answers.errors,
    )
