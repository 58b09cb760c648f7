"""Submission to result latency for a dry run of 50 usergroups through a real worker.

Run: `python -m benchmarks.reconcile_latency [--groups N] [--runs N]`. Times
`slack_usergroups_reconcile_v1` plus a blocking `reconcile_task_v1` read against a
`serve --role api` gateway with a Celery worker, and against a `serve --role all` gateway
(in-process engine) as the baseline, alternating runs so machine noise hits both alike.
"""

import argparse
import signal
import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

import httpx

from benchmarks.harness import gateway, peak_rss_mb, worker
from gateway.tasks.engine import QUEUES
from tests.emulators.slack import SlackEmulator, SlackState
from tests.support.redis_server import PrivateRedis
from tests.support.server_thread import ServerThread

TOKEN = "xoxb-bench-token"
TOKEN_VARIABLE = "QGW_BENCH_SLACK_TOKEN"
GENEROUS: dict[str, float] = {"requests": 6000, "per_seconds": 60, "burst": 100}
USERS_PER_GROUP = 10
WARM_UPS = 2
CELERY = "serve --role api + Celery worker"
IN_PROCESS = "serve --role all (in-process)"
SUBMIT = """mutation Submit($input: SlackUsergroupsReconcileInput_v1!) {
  slack_usergroups_reconcile_v1(input: $input) { id status }
}"""
READ = """query Read($id: String!) {
  reconcile_task_v1(id: $id, wait_seconds: 60) {
    status error
    typed_result {
      status errors
      ... on SlackUsergroupsReconcileResult_v1 { actions { __typename usergroup } }
    }
  }
}"""


@dataclass(frozen=True)
class Run:
    """One submission read to its end."""

    seconds: float
    actions: int


def slack_state(state: SlackState, groups: int) -> None:
    """`groups` usergroups of ten users each, out of `groups * 5` users."""
    state.token = TOKEN
    for n in range(groups * 5):
        state.add_user(f"U{n:05d}", f"user{n}", f"user{n}@example.com")
    for n in range(groups):
        members = [f"U{(n * 5 + k) % (groups * 5):05d}" for k in range(USERS_PER_GROUP)]
        state.add_usergroup(f"team-{n}", users=members, description=f"Team {n}")


def desired(groups: int) -> dict[str, Any]:
    """The workspace input: every group swaps its first member, every fifth is renamed."""
    usergroups = []
    for n in range(groups):
        users = [f"user{(n * 5 + k) % (groups * 5)}" for k in range(1, USERS_PER_GROUP + 1)]
        description = f"Team {n}" + (" (renamed)" if n % 5 == 0 else "")
        usergroups.append(
            {"handle": f"team-{n}", "config": {"description": description, "users": users}}
        )
    return {
        "name": "bench",
        "managed_usergroups": [f"team-{n}" for n in range(groups)],
        "usergroups": usergroups,
    }


def graphql(client: httpx.Client, url: str, query: str, **variables: Any) -> dict[str, Any]:
    """POST one operation; raise on any GraphQL error."""
    body = client.post(f"{url}/graphql", json={"query": query, "variables": variables}).json()
    if body.get("errors"):
        raise RuntimeError(f"{url}: {body['errors']}")
    data: dict[str, Any] = body["data"]
    return data


def reconcile_once(client: httpx.Client, url: str, workspace: dict[str, Any]) -> Run:
    """Submit a dry run and read it to its end; the time from submission to the result."""
    start = time.perf_counter()
    submitted = graphql(client, url, SUBMIT, input={"dry_run": True, "workspaces": [workspace]})
    task_id = submitted["slack_usergroups_reconcile_v1"]["id"]
    task = graphql(client, url, READ, id=task_id)["reconcile_task_v1"]
    seconds = time.perf_counter() - start
    result = task["typed_result"]
    if task["status"] != "success" or result is None or result["errors"]:
        raise RuntimeError(f"task {task_id} did not succeed: {task}")
    return Run(seconds, len(result["actions"]))


@contextmanager
def gateways(groups: int) -> Iterator[tuple[int, dict[str, str]]]:
    """Redis, the Slack emulator, the Celery worker's pid and both gateways by name."""
    emulator = SlackEmulator()
    slack_state(emulator.state, groups)
    with ExitStack() as stack:
        redis = stack.enter_context(PrivateRedis())
        slack = stack.enter_context(ServerThread(emulator.app))
        account = {
            "name": "bench",
            "api_url": f"{slack.url}/api",
            "token": {"env": TOKEN_VARIABLE},
            "rate_limit": GENEROUS,
        }
        upstreams = {"slack": [account]}
        celery = {
            TOKEN_VARIABLE: TOKEN,
            "QONTRACT_GATEWAY_REDIS__NAMESPACE": "bench-celery",
            "QONTRACT_GATEWAY_ROLE": "api",
        }
        in_process = {
            TOKEN_VARIABLE: TOKEN,
            "QONTRACT_GATEWAY_REDIS__NAMESPACE": "bench-inprocess",
            "QONTRACT_GATEWAY_ROLE": "all",
        }
        worker_pid = stack.enter_context(worker(redis.url, upstreams, celery, ",".join(QUEUES)))
        yield (
            worker_pid,
            {
                CELERY: stack.enter_context(gateway(redis.url, upstreams, celery)),
                IN_PROCESS: stack.enter_context(gateway(redis.url, upstreams, in_process)),
            },
        )


def summary(runs: list[Run]) -> str:
    """Median, p90 and max in milliseconds."""
    times = sorted(run.seconds * 1000 for run in runs)
    p90 = statistics.quantiles(times, n=10, method="inclusive")[-1]
    return f"median {statistics.median(times):7.1f} ms  p90 {p90:7.1f} ms  max {times[-1]:7.1f} ms"


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    """Measure both engines, alternating runs, and print both with their ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _exit_on_signal)
    workspace = desired(args.groups)
    with gateways(args.groups) as (worker_pid, urls), httpx.Client(timeout=90) as client:
        for _ in range(WARM_UPS):
            for url in urls.values():
                reconcile_once(client, url, workspace)
        runs: dict[str, list[Run]] = {name: [] for name in urls}
        for _ in range(args.runs):
            for name, url in urls.items():
                runs[name].append(reconcile_once(client, url, workspace))
        worker_memory = peak_rss_mb(worker_pid)
    actions = {run.actions for measured in runs.values() for run in measured}
    print(
        f"slack usergroups dry run, {args.groups} usergroups, submission to result, "
        f"median of {args.runs} after {WARM_UPS} warm-ups"
    )
    print(f"  actions per run: {sorted(actions)} (identical across runs: {len(actions) == 1})")
    for name, measured in runs.items():
        print(f"  {name:<33} {summary(measured)}")
    celery, in_process = (
        statistics.median(r.seconds for r in runs[n]) for n in (CELERY, IN_PROCESS)
    )
    print(f"  ratio celery / in-process (medians): {celery / in_process:.2f} x")
    peaks = ", ".join(f"{mb:.0f} MB" for mb in worker_memory.values())
    print(f"  Celery worker peak RSS (main, then pool processes): {peaks}  (target <= 150 MB)")
    if actions == {0} or len(actions) != 1:
        raise SystemExit("sanity check failed: actions per run must be > 0 and identical")


if __name__ == "__main__":
    main()
