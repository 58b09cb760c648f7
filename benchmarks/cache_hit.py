"""Cache-hit lookups: the gateway against a bare Starlette endpoint doing the same Redis read.

Run: `python -m benchmarks.cache_hit` (needs redis-server, and wrk or else `benchmarks.load`;
loopback only, ~1 minute).
Prints requests/s of both, side by side in one run, and their ratio (target >= 0.5); the p50
latency of 50 schedules vs 1 schedule in one query (target <= 3x); and the upstream fetches
caused by 200 concurrent callers spread over 3 gateway processes (target: exactly 1).
"""

import asyncio
import os
from contextlib import ExitStack
from typing import Any

import httpx

from benchmarks.harness import baseline, gateway, interleaved, median_rps, wrk
from tests.emulators.pagerduty import PagerDutyEmulator
from tests.support.redis_server import PrivateRedis
from tests.support.server_thread import ServerThread

TOKEN = "benchmark-pagerduty-token"
SCHEDULES = (
    'query S($ids: [String!]!) { pagerduty_schedules_v1(instance: "app-sre", ids: $ids) '
    "{ id users { id email username } } }"
)
ROUNDS, SECONDS = 3, 5


def emulator(schedules: int = 51) -> PagerDutyEmulator:
    """A PagerDuty account with `schedules` schedules of 2 on-call users each."""
    pagerduty = PagerDutyEmulator()
    pagerduty.state.token = TOKEN
    for n in range(2 * schedules):
        pagerduty.state.add_user(f"U{n}", f"user{n}@example.com")
    pagerduty.state.oncall = {f"P{n}": [f"U{2 * n}", f"U{2 * n + 1}"] for n in range(schedules)}
    return pagerduty


def body(ids: list[str]) -> dict[str, Any]:
    """The GraphQL request for `ids`."""
    return {"query": SCHEDULES, "variables": {"ids": ids}, "operationName": "S"}


async def herd(urls: list[str], callers: int) -> None:
    """`callers` concurrent queries for one uncached schedule, spread over `urls`."""
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=callers)) as c:
        responses = await asyncio.gather(
            *(c.post(f"{urls[i % len(urls)]}/graphql", json=body(["P50"])) for i in range(callers))
        )
    assert all(r.json()["data"]["pagerduty_schedules_v1"][0]["users"] for r in responses)


def main() -> None:
    """Run every measurement and print the figures README quotes."""
    os.environ["BENCH_PD_TOKEN"] = TOKEN
    pagerduty = emulator()
    with ExitStack() as stack:
        redis = stack.enter_context(PrivateRedis())
        upstream = stack.enter_context(ServerThread(pagerduty.app))
        account = {
            "name": "app-sre",
            "api_url": upstream.url,
            "token": {"env": "BENCH_PD_TOKEN"},
            "ttl": {"schedule_users": 3600},
        }
        upstreams = {"pagerduty": [account]}
        urls = [stack.enter_context(gateway(redis.url, upstreams, {})) for _ in range(3)]
        no_results = {"QONTRACT_GATEWAY_CACHE__RESULT_CACHE_ENTRIES": "0"}
        plain = stack.enter_context(gateway(redis.url, upstreams, no_results))
        one, fifty = body(["P0"]), body([f"P{n}" for n in range(50)])
        for request in (one, fifty):
            assert "errors" not in httpx.post(f"{urls[0]}/graphql", json=request).json()
        key = "bench:cache:{pagerduty/app-sre/schedule_users}:value:P0"
        bare = stack.enter_context(baseline(redis.url, key))
        wrk(bare + "/graphql", one, 2)
        wrk(urls[0] + "/graphql", one, 2)
        wrk(plain + "/graphql", one, 2)

        runs = interleaved(
            {
                "baseline": (bare + "/graphql", one),
                "gateway": (urls[0] + "/graphql", one),
                "plain": (plain + "/graphql", one),
            },
            ROUNDS,
            SECONDS,
        )
        base_rps, gateway_rps = median_rps(runs["baseline"]), median_rps(runs["gateway"])
        plain_rps = median_rps(runs["plain"])
        p50_one = wrk(urls[0] + "/graphql", one, SECONDS, connections=1).p50_ms
        p50_fifty = wrk(urls[0] + "/graphql", fifty, SECONDS, connections=1).p50_ms
        plain_one = wrk(plain + "/graphql", one, SECONDS, connections=1).p50_ms
        plain_fifty = wrk(plain + "/graphql", fifty, SECONDS, connections=1).p50_ms

        before = pagerduty.total_calls("GET /schedules/P50/")
        asyncio.run(herd(urls, 200))
        fetches = pagerduty.total_calls("GET /schedules/P50/") - before

    errors = sum(load.errors for loads in runs.values() for load in loads)
    lines = [
        f"cache-hit lookup, {ROUNDS} interleaved runs of {SECONDS}s, 32 connections, 1 worker",
        f"  bare Starlette + Redis GET           : {base_rps:8.0f} req/s (median)",
        f"  gateway pagerduty_schedules_v1(1 id) : {gateway_rps:8.0f} req/s (median)",
        f"  ratio gateway / baseline             : {gateway_rps / base_rps:8.2f}  (target >= 0.50)",
        f"  without the result cache             : {plain_rps:8.0f} req/s = "
        f"{plain_rps / base_rps:.2f}x (parsed, validated, executed; local-tier hit)",
        f"  non-2xx or timeouts                  : {errors}",
        f"50 ids vs 1 id, p50 at 1 connection: {p50_fifty:.2f} ms vs {p50_one:.2f} ms = "
        f"{p50_fifty / p50_one:.2f}x  (target <= 3x)",
        f"  without the result cache: {plain_fifty:.2f} ms vs {plain_one:.2f} ms = "
        f"{plain_fifty / plain_one:.2f}x",
        f"thundering herd, 200 callers over 3 gateways: {fetches} upstream fetch(es) "
        "(target: exactly 1)",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
