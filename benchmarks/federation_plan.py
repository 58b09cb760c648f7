"""Time merging the recorded qontract-server schema and planning the joined desired-state query.

Run: `python -m benchmarks.federation_plan [--runs N]` (target: planning ≤ 1 ms uncached).
"""

import argparse
import json
import statistics
import time
from pathlib import Path

from graphql import parse
from prometheus_client import CollectorRegistry

from gateway.federation.merge import merge_schema
from gateway.federation.plan import plan_operation
from gateway.metrics import GatewayMetrics
from gateway.settings import QueryLimits
from resolvers.systems import SYSTEMS
from schema import build_schema
from schema.app_interface import TABLE

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "qontract_server"


def joined_query() -> str:
    """Golden 03's slack-usergroups desired state with on-call users and repository owners."""
    golden = json.loads((DATA / "goldens" / "03-desired-state.json").read_text())
    query: str = golden["request"]["json"]["query"]
    return query.replace(
        "escalationPolicyID\n", "escalationPolicyID\n oncall_users { username }\n", 1
    ).replace("ownersFromRepos\n", "ownersFromRepos\n repo_owners { approvers }\n", 1)


def plan_times(runs: int) -> tuple[float, float, float]:
    """(merge seconds, p50 ms, p99 ms) of merging the recorded schema and planning uncached."""
    introspection = json.loads((DATA / "introspection.json").read_text())
    introspection = introspection.get("data", introspection)
    gateway = build_schema(QueryLimits(), GatewayMetrics(CollectorRegistry()), SYSTEMS)
    started = time.perf_counter()
    merged = merge_schema(gateway._schema, introspection, TABLE.sdl())
    merge_seconds = time.perf_counter() - started
    document = parse(joined_query())
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        plan_operation(document, None, merged.schema, merged.remote_roots, TABLE)
        times.append(time.perf_counter() - started)
    times.sort()
    p50 = statistics.median(times) * 1000
    p99 = times[int(len(times) * 0.99) - 1] * 1000
    return merge_seconds, p50, p99


def main() -> None:
    """Print the merge time and the p50/p99 of uncached planning."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=500)
    runs = parser.parse_args().runs
    merge_seconds, p50, p99 = plan_times(runs)
    print(f"merge: {merge_seconds:.3f} s")
    print(f"plan (uncached): p50 {p50:.3f} ms, p99 {p99:.3f} ms over {runs} runs")


if __name__ == "__main__":
    main()
