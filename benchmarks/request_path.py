"""The request path in front of execution: repeated, distinct and re-parameterised queries.

Run: `python -m benchmarks.request_path` (needs redis-server; loopback only, ~1 minute; the
load comes from `benchmarks.load`).
All data is in the gateway's cache (64 warm schedules); every figure is a ratio against the
bare Starlette endpoint doing one Redis GET, measured in the same run, interleaved:

- repeated: the same body every request (the whole-result cache): req/s and p99 vs the baseline
  (targets >= 1x and <= 1.5x);
- distinct documents: every request a new document (a new alias, one of the 64 schedules);
- distinct variables: one document, every request new variables (an ordered pair of the 64);
- CPU per request of each process (from /proc, steady under machine load);
- the gateway process's RSS after all of it (target <= 150 MB).
"""

import json
import os
import statistics
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass

import httpx

from benchmarks.cache_hit import TOKEN, body, emulator
from benchmarks.harness import baseline_process, cpu_seconds, gateway_process, rss_mb
from benchmarks.load import Bodies, Load, load
from tests.support.redis_server import PrivateRedis
from tests.support.server_thread import ServerThread

ROUNDS, SECONDS, WARM = 3, 3, 64
ONE_SCHEDULE = (
    'query S {{ a{n}: pagerduty_schedules_v1(instance: "app-sre", ids: ["P{id}"]) '
    "{{ id users {{ id email username }} }} }}"
)


def new_alias(n: int) -> bytes:
    """Request `n`: a document of its own (alias `a<n>`), one of the warm schedules."""
    query = ONE_SCHEDULE.format(n=n, id=n % WARM)
    return json.dumps({"query": query, "operationName": "S"}).encode()


def new_variables(n: int) -> bytes:
    """Request `n`: the one document, with variables of its own (an ordered pair of schedules)."""
    return json.dumps(body([f"P{n % WARM}", f"P{n // WARM % WARM}"])).encode()


@dataclass
class Measured:
    """The runs of one target and the CPU its process spent on them."""

    pid: int
    loads: list[Load]
    cpu: float = 0.0

    def rps(self) -> float:
        """Median requests/s."""
        return statistics.median(load.requests_per_second for load in self.loads)

    def p99(self) -> float:
        """Median of the runs' p99 latencies (ms)."""
        return statistics.median(load.p99_ms for load in self.loads)

    def cpu_ms_per_request(self) -> float:
        """The process's CPU milliseconds per request served."""
        served = sum(load.requests_per_second * SECONDS for load in self.loads)
        return 1000 * self.cpu / served


def measure(targets: dict[str, tuple[int, Callable[[int], Load]]]) -> dict[str, Measured]:
    """Run each target ROUNDS times, alternating, counting its process's CPU time."""
    measured = {name: Measured(pid, []) for name, (pid, _) in targets.items()}
    for round_number in range(ROUNDS):
        for name, (pid, run) in targets.items():
            before = cpu_seconds(pid)
            measured[name].loads.append(run(round_number))
            measured[name].cpu += cpu_seconds(pid) - before
    return measured


def distinct(url: str, bodies: Bodies) -> Callable[[int], Load]:
    """A run of never-repeated bodies (each round numbers its requests afresh)."""
    return lambda round_number: load(url, lambda n: bodies(10**8 * round_number + n), SECONDS)


def main() -> None:
    """Run every measurement and print the figures README quotes."""
    os.environ["BENCH_PD_TOKEN"] = TOKEN
    pagerduty = emulator(WARM)
    with ExitStack() as stack:
        redis = stack.enter_context(PrivateRedis())
        upstream = stack.enter_context(ServerThread(pagerduty.app))
        account = {
            "name": "app-sre",
            "api_url": upstream.url,
            "token": {"env": "BENCH_PD_TOKEN"},
            "ttl": {"schedule_users": 3600},
        }
        url, pid = stack.enter_context(gateway_process(redis.url, {"pagerduty": [account]}, {}))
        warm = httpx.post(f"{url}/graphql", json=body([f"P{n}" for n in range(WARM)])).json()
        assert "errors" not in warm, warm
        key = "bench:cache:{pagerduty/app-sre/schedule_users}:value:P0"
        bare, bare_pid = stack.enter_context(baseline_process(redis.url, key))
        one = json.dumps(body(["P0"])).encode()
        endpoint, bare_endpoint = url + "/graphql", bare + "/graphql"
        for target in (bare_endpoint, endpoint):
            load(target, lambda _: one, 2)
        runs = measure(
            {
                "baseline": (bare_pid, lambda _: load(bare_endpoint, lambda _: one, SECONDS)),
                "repeated": (pid, lambda _: load(endpoint, lambda _: one, SECONDS)),
                "documents": (pid, distinct(endpoint, new_alias)),
                "variables": (pid, distinct(endpoint, new_variables)),
            }
        )
        rss = rss_mb(pid)

    base = runs["baseline"]
    errors = sum(load.errors for each in runs.values() for load in each.loads)
    lines = [
        f"request path, {ROUNDS} interleaved runs of {SECONDS}s, 32 connections, 1 worker, "
        f"{WARM} warm schedules",
        "  target                          req/s    ratio    p99 ms  p99 ratio  CPU ms/req",
    ]
    labels = {
        "baseline": "bare Starlette + Redis GET",
        "repeated": "repeated query (result cache)",
        "documents": "new document per request",
        "variables": "new variables per request",
    }
    for name, label in labels.items():
        each = runs[name]
        lines.append(
            f"  {label:30} {each.rps():7.0f}  {each.rps() / base.rps():6.2f}x  "
            f"{each.p99():7.1f}  {each.p99() / base.p99():8.2f}x  {each.cpu_ms_per_request():9.3f}"
        )
    lines += [
        "  targets: repeated >= 1x with p99 <= 1.5x; distinct bodies >= 0.6x",
        f"  non-2xx or timeouts: {errors}",
        f"gateway RSS after the runs: {rss:.0f} MB (target <= 150 MB)",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
