"""The shape of an integration run: one request for 40 schedules, 10 escalation policies and the
OWNERS of 20 repositories, a different set every request, all of it in the gateway's cache.

Run: `python -m benchmarks.integration_run` (needs redis-server; loopback only, ~1 minute; the
load comes from `benchmarks.load`). Prints p50/p99 latency at one connection of the run request,
of a one-schedule request and of the bare Starlette endpoint doing one Redis GET, interleaved in
the same run, their ratios, and each gateway request's CPU milliseconds (from /proc, steady under
machine load). The whole-result cache is off: the run request never repeats a body anyway,
and the one-schedule request (a pool of 160) would.
"""

import json
import os
import random
import statistics
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import httpx

from benchmarks.harness import baseline_process, cpu_seconds, gateway_process
from benchmarks.load import Load, load
from tests.emulators.github import GitHubEmulator
from tests.emulators.pagerduty import PagerDutyEmulator
from tests.support.redis_server import PrivateRedis
from tests.support.server_thread import ServerThread

TOKEN = "benchmark-integration-token"
ROUNDS, SECONDS = 3, 4
SCHEDULES, POLICIES, REPOS, USERS = 160, 40, 80, 20
"""The warm pools each request draws from, and the on-call users of each schedule."""
ASKED_SCHEDULES, ASKED_POLICIES, ASKED_REPOS = 40, 10, 20
OWNERS_FILE = "approvers: [alice, bob, carol]\nreviewers: [dave, erin, frank]\n"


def run_document() -> str:
    """The integration's query: schedules, policies and one `vcs_owners_v1` per repository."""
    repos = "".join(f", $r{n}: String!" for n in range(ASKED_REPOS))
    owners = "".join(
        f" o{n}: vcs_owners_v1(repo_url: $r{n}) {{ approvers reviewers }}"
        for n in range(ASKED_REPOS)
    )
    return (
        f"query Run($schedules: [String!]!, $policies: [String!]!{repos}) {{"
        ' schedules: pagerduty_schedules_v1(instance: "app-sre", ids: $schedules)'
        " { id users { id email username } }"
        ' policies: pagerduty_escalation_policies_v1(instance: "app-sre", ids: $policies)'
        f" {{ id users {{ username }} }}{owners} }}"
    )


RUN = run_document()
ONE = (
    'query One($ids: [String!]!) { pagerduty_schedules_v1(instance: "app-sre", ids: $ids) '
    "{ id users { id email username } } }"
)


def repo_url(n: int) -> str:
    """The URL of warm repository `n`."""
    return f"https://github.com/app-sre/repo-{n}"


def run_body(n: int) -> bytes:
    """Request `n`: its own sample of schedules, policies and repositories."""
    pick = random.Random(n)
    variables: dict[str, Any] = {
        "schedules": [f"P{i}" for i in pick.sample(range(SCHEDULES), ASKED_SCHEDULES)],
        "policies": [f"EP{i}" for i in pick.sample(range(POLICIES), ASKED_POLICIES)],
    }
    for slot, repo in enumerate(pick.sample(range(REPOS), ASKED_REPOS)):
        variables[f"r{slot}"] = repo_url(repo)
    return json.dumps({"query": RUN, "variables": variables, "operationName": "Run"}).encode()


def one_body(n: int) -> bytes:
    """Request `n`: one schedule (a different one from the last)."""
    variables = {"ids": [f"P{n % SCHEDULES}"]}
    return json.dumps({"query": ONE, "variables": variables, "operationName": "One"}).encode()


def emulators() -> tuple[PagerDutyEmulator, GitHubEmulator]:
    """PagerDuty with the schedule and policy pools; GitHub with an OWNERS file per repo."""
    pagerduty = PagerDutyEmulator()
    pagerduty.state.token = TOKEN
    for n in range(SCHEDULES * USERS):
        pagerduty.state.add_user(f"U{n}", f"user{n}@example.com")
    pagerduty.state.oncall = {
        f"P{n}": [f"U{n * USERS + k}" for k in range(USERS)] for n in range(SCHEDULES)
    }
    pagerduty.state.policies = {
        f"EP{n}": [(30, [("schedule", f"P{n}")]), (30, [("schedule", f"P{n + 1}")])]
        for n in range(POLICIES)
    }
    github = GitHubEmulator()
    github.state.token = TOKEN
    for n in range(REPOS):
        github.state.files[(f"app-sre/repo-{n}", "master")] = {"OWNERS": OWNERS_FILE}
    return pagerduty, github


def numbered_from(first: int, bodies: Callable[[int], bytes]) -> Callable[[int], bytes]:
    """`bodies` numbered from `first`, so no round repeats another's bodies."""
    return lambda n: bodies(first + n)


def warm(url: str) -> None:
    """Every pool item in the gateway's cache: each schedule, policy and repository once."""
    everything = {
        "schedules": [f"P{n}" for n in range(SCHEDULES)],
        "policies": [f"EP{n}" for n in range(POLICIES)],
    }
    for first in range(0, REPOS, ASKED_REPOS):
        repos = {f"r{k}": repo_url(first + k) for k in range(ASKED_REPOS)}
        request = {"query": RUN, "variables": {**everything, **repos}, "operationName": "Run"}
        answer = httpx.post(f"{url}/graphql", json=request, timeout=120).json()
        assert "errors" not in answer, answer["errors"][:3]


def main() -> None:
    """Run every measurement and print the figures README quotes."""
    os.environ["BENCH_INTEGRATION_TOKEN"] = TOKEN
    pagerduty, github = emulators()
    with ExitStack() as stack:
        redis = stack.enter_context(PrivateRedis())
        pd_upstream = stack.enter_context(ServerThread(pagerduty.app))
        gh_upstream = stack.enter_context(ServerThread(github.app))
        token = {"env": "BENCH_INTEGRATION_TOKEN"}
        day = 86_400
        upstreams = {
            "pagerduty": [
                {
                    "name": "app-sre",
                    "api_url": pd_upstream.url,
                    "token": token,
                    "ttl": {"schedule_users": day, "escalation_policy_users": day},
                }
            ],
            "github": [{"name": "app-sre", "api_url": gh_upstream.url, "token": token}],
        }
        no_results = {"QONTRACT_GATEWAY_CACHE__RESULT_CACHE_ENTRIES": "0"}
        url, pid = stack.enter_context(gateway_process(redis.url, upstreams, no_results))
        warm(url)
        key = "bench:cache:{pagerduty/app-sre/schedule_users}:value:P0"
        bare, bare_pid = stack.enter_context(baseline_process(redis.url, key))
        endpoint, bare_endpoint = url + "/graphql", bare + "/graphql"
        bare_body = one_body(0)
        targets: dict[str, tuple[str, int, Callable[[int], bytes]]] = {
            "baseline": (bare_endpoint, bare_pid, lambda _: bare_body),
            "one": (endpoint, pid, one_body),
            "run": (endpoint, pid, run_body),
        }
        for target, _, bodies in targets.values():
            load(target, bodies, 1, connections=1)
        loads: dict[str, list[Load]] = {name: [] for name in targets}
        cpu = dict.fromkeys(targets, 0.0)
        for round_number in range(ROUNDS):
            for name, (target, process_id, bodies) in targets.items():
                before = cpu_seconds(process_id)
                fresh = numbered_from(10**6 * (round_number + 1), bodies)
                loads[name].append(load(target, fresh, SECONDS, connections=1))
                cpu[name] += cpu_seconds(process_id) - before

    def p50(name: str) -> float:
        return statistics.median(each.p50_ms for each in loads[name])

    def p99(name: str) -> float:
        return statistics.median(each.p99_ms for each in loads[name])

    def cpu_ms(name: str) -> float:
        served = sum(each.requests_per_second * SECONDS for each in loads[name])
        return 1000 * cpu[name] / served

    errors = sum(each.errors for runs in loads.values() for each in runs)
    labels = {
        "baseline": "bare Starlette + Redis GET",
        "one": "one schedule, new id each request",
        "run": "integration run request",
    }
    lines = [
        f"integration run: {ASKED_SCHEDULES} schedules ({USERS} users each), {ASKED_POLICIES} "
        f"escalation policies, {ASKED_REPOS} vcs_owners_v1; a new sample every request; "
        f"{ROUNDS} interleaved runs of {SECONDS}s at 1 connection, all in cache",
        f"  {'target':34} p50 ms  p99 ms  p50 vs bare  p99 vs bare  CPU ms/req",
    ]
    for name, label in labels.items():
        lines.append(
            f"  {label:34} {p50(name):7.2f} {p99(name):7.2f}  {p50(name) / p50('baseline'):9.2f}x"
            f"  {p99(name) / p99('baseline'):9.2f}x  {cpu_ms(name):9.3f}"
        )
    lines += [
        f"  run request vs one schedule: p50 {p50('run') / p50('one'):.2f}x, "
        f"CPU {cpu_ms('run') / cpu_ms('one'):.2f}x",
        f"  non-2xx or timeouts: {errors}",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
