"""Federation on a 3,000-user bundle: the joined slack-usergroups query through the gateway
against the two-round-trip flow and qontract-server (the stand-in) alone, in one run.

Run: `python -m benchmarks.federation [--runs N]` (needs redis-server; loopback only; about
two minutes with the default 9 runs). Everything but the gateway runs in this process: the
qontract-server stand-in serving `scaled_bundle()`, and PagerDuty and GitHub emulators. The
gateway is one `qontract-gateway serve` process. Requests are sequential (one connection), the
flows interleaved (alternating which goes first) so machine noise hits them alike. The
gateway's schema poll is set to 10 minutes, so it does not introspect the stand-in mid-run.

The first runs are each on a new bundle with the live data uncached: the two round trips first,
then Redis is flushed and the gateway's 1 s local tier waited out, then the joined query.

Uncached runs use a new bundle each (the same data under another `git_commit`, so another sha):
the gateway's answer cache cannot serve it, while its document and plan caches do, as for an
integration asking its one query of every new bundle. Live data (on-call users, OWNERS) is
cached by the gateway after the warm-up, in both flows alike. The ten cached answers for the
memory figure are made distinct by a root alias (`bust<n>: integrations_v1 { name }`).
"""

import argparse
import functools
import gc
import json
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from benchmarks.federation_plan import plan_times
from benchmarks.harness import gateway_command, gateway_config, gateway_env, process
from reconcile_client.gql.qontract_server.slack_usergroups_desired_state import (
    PermissionSlackUsergroupV1,
)
from reconcile_client.integrations.slack_usergroups_api import (
    LookupResults,
    Lookups,
    without_live_fields,
)
from reconcile_client.integrations.slack_usergroups_state import selected_permissions
from reconcile_client.operations import SLACK_USERGROUPS_DESIRED_STATE, SLACK_USERGROUPS_JOINED
from tests.emulators.github import GitHubEmulator
from tests.emulators.pagerduty import PagerDutyEmulator
from tests.emulators.qontract_bundle import scaled_bundle
from tests.emulators.qontract_server_standin import QontractServerStandin
from tests.federation.conftest import GH_TOKEN, PD_TOKEN, ROOT_OWNERS, pagerduty_state
from tests.support.ports import free_port
from tests.support.redis_server import PrivateRedis
from tests.support.server_thread import ServerThread

USERS = 3000
PAGERDUTY_ACCOUNTS = ("app-sre", "scaled-pd-0", "scaled-pd-1")
PASSTHROUGH = (
    "{ users_v1 { path name org_username github_username pagerduty_username roles { path name } } }"
)
LARGE = (
    "{ users_v1 { path name org_username github_username pagerduty_username "
    "tag_on_merge_requests tag_on_cluster_updates "
    "roles { path name description permissions { path name } } } }"
)
CACHED_ANSWERS = 10
WARM = "{ integrations_v1 { name } }"
JOINED, TRIPS = "joined", "two round trips"
LOCAL_TIER_SECONDS = 1.5


class ServerTimes:
    """ASGI wrapper timing each request inside the stand-in (call to its last body message),
    so the stand-in's own noise can be taken out of a gateway's added time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.last = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request; note how long it took."""
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.last = time.perf_counter() - started  # set before the client can see it
            await send(message)

        await self.app(scope, receive, timed_send)


@dataclass
class Servers:
    """The stand-in, the gateway's URL and process id, and one HTTP client."""

    standin: QontractServerStandin
    times: ServerTimes
    gateway: str
    pid: int
    http: httpx.Client
    redis_url: str
    pagerduty: PagerDutyEmulator

    def post(self, base: str, query: str, variables: dict[str, Any] | None = None) -> bytes:
        """POST `query` to `base`; the body of a 200 answer."""
        payload: dict[str, Any] = {"query": query}
        if variables:
            payload["variables"] = variables
        response = self.http.post(base, json=payload)
        if response.status_code != 200:
            raise RuntimeError(f"{base}: HTTP {response.status_code}: {response.text[:500]}")
        return response.content

    def standin_url(self, sha: str) -> str:
        """The stand-in's endpoint pinned to `sha`."""
        return f"{self.standin.url}/graphqlsha/{sha}"

    def gateway_url(self, sha: str) -> str:
        """The gateway's endpoint pinned to `sha`."""
        return f"{self.gateway}/graphqlsha/{sha}"


def answer_requests(standin: QontractServerStandin) -> int:
    """GraphQL requests the stand-in received, not counting the gateway's schema polls."""
    return sum(1 for r in standin.graphql_requests() if b"__schema" not in r.body)


def new_bundle(standin: QontractServerStandin, base: dict[str, Any], n: int) -> str:
    """`base` under another git commit loaded into the stand-in: a sha nobody has asked yet."""
    return standin.load({**base, "git_commit": f"{n:040x}"})


def bust(document: str, n: int | None) -> str:
    """`document` with a root alias `bust<n>` that makes it a document never seen before."""
    if n is None:
        return document
    head, rest = document.split("{", 1)
    return f"{head}{{\n  bust{n}: integrations_v1 {{ name }}{rest}"


def data_of(body: bytes, n: int | None) -> dict[str, Any]:
    """The `data` of a GraphQL answer without the cache-busting alias; errors raised."""
    answer = json.loads(body)
    if answer.get("errors"):
        raise RuntimeError(f"errors: {answer['errors'][:3]}")
    data: dict[str, Any] = answer["data"]
    data.pop(f"bust{n}", None)
    return data


def joined_flow(servers: Servers, sha: str) -> tuple[float, float]:
    """One joined query through the gateway and the client's work on it: (total, HTTP) seconds."""
    started = time.perf_counter()
    body = servers.post(servers.gateway_url(sha), SLACK_USERGROUPS_JOINED.document)
    http = time.perf_counter() - started
    data = data_of(body, None)
    desired = SLACK_USERGROUPS_DESIRED_STATE.result.model_validate(without_live_fields(data))
    LookupResults.of_joined(desired.permissions, data["permissions"])
    return time.perf_counter() - started, http


def two_round_trips(servers: Servers, sha: str) -> tuple[float, float, float]:
    """Desired state from the stand-in, then the gateway lookups, joined by the client:
    (total, first round trip, the stand-in's time in it) seconds."""
    started = time.perf_counter()
    body = servers.post(servers.standin_url(sha), SLACK_USERGROUPS_DESIRED_STATE.document)
    first = time.perf_counter() - started
    server = servers.times.last
    desired = SLACK_USERGROUPS_DESIRED_STATE.result.model_validate(data_of(body, None))
    permissions = [p for p in desired.permissions if isinstance(p, PermissionSlackUsergroupV1)]
    query = Lookups.of(selected_permissions(permissions)).query()
    assert query is not None, "the scaled bundle has PagerDuty targets"
    document, variables, aliases = query
    answer = servers.post(f"{servers.gateway}/graphql", document, variables)
    LookupResults.parse(data_of(answer, None), aliases)
    return time.perf_counter() - started, first, server


def forget_live_data(servers: Servers) -> None:
    """Empty Redis and wait out the gateway's local tier (1 s): live lookups are uncached."""
    with redis.Redis.from_url(servers.redis_url) as client:
        client.flushdb()
    time.sleep(LOCAL_TIER_SECONDS)


def cold(servers: Servers, flow: Callable[[], float]) -> tuple[float, int]:
    """(seconds, PagerDuty calls) of `flow` run with nothing cached."""
    calls = servers.pagerduty.total_calls()
    seconds = flow()
    return seconds, servers.pagerduty.total_calls() - calls


def timed(call: Callable[[], object]) -> float:
    """Seconds `call` took (garbage of earlier runs collected before)."""
    gc.collect()
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def outside(servers: Servers, call: Callable[[], object]) -> float:
    """Seconds `call` took beyond the stand-in's time for the request it caused."""
    return timed(call) - servers.times.last


def p50_ms(seconds: list[float]) -> float:
    """The median, in milliseconds."""
    return statistics.median(seconds) * 1000


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of `pid` in MB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def emulators() -> tuple[PagerDutyEmulator, GitHubEmulator]:
    """PagerDuty with on-call users for every target; GitHub with the bundle's OWNERS files."""
    pagerduty = PagerDutyEmulator()
    pagerduty_state(pagerduty)
    github = GitHubEmulator()
    github.state.token = GH_TOKEN
    github.state.files[("app-sre/qontract-reconcile", "master")] = {"OWNERS": ROOT_OWNERS}
    for n in (5, 9, 16):
        github.state.files[(f"app-sre/gen-repo-{n}", "master")] = {"OWNERS": f"approvers: [g{n}]"}
    return pagerduty, github


@contextmanager
def servers() -> Iterator[Servers]:
    """Redis, the emulators, the stand-in on `scaled_bundle()` and a federating gateway."""
    pagerduty, github = emulators()
    with ExitStack() as stack:
        redis = stack.enter_context(PrivateRedis())
        standin = QontractServerStandin()
        times = ServerTimes(standin.app)
        standin.app = times
        stack.enter_context(standin)
        pd = stack.enter_context(ServerThread(pagerduty.app))
        gh = stack.enter_context(ServerThread(github.app))
        upstreams = {
            "qontract_server": {"url": standin.url, "poll_interval": 600},
            "pagerduty": [
                {"name": name, "api_url": pd.url, "token": {"env": "BENCH_PD_TOKEN"}}
                for name in PAGERDUTY_ACCOUNTS
            ],
            "github": [{"name": "app-sre", "api_url": gh.url, "token": {"env": "BENCH_GH_TOKEN"}}],
        }
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        config = stack.enter_context(gateway_config(upstreams))
        env = gateway_env(redis.url, {"BENCH_PD_TOKEN": PD_TOKEN, "BENCH_GH_TOKEN": GH_TOKEN})
        command = gateway_command("serve", "--port", str(port), "--config", str(config))
        child = stack.enter_context(process(command, env, f"{url}/readyz"))
        http = stack.enter_context(httpx.Client(timeout=120))
        yield Servers(standin, times, url, child.pid, http, redis.url, pagerduty)


def main() -> None:
    """Measure every figure and print them with their targets."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9)
    runs = parser.parse_args().runs
    merge_seconds, plan_p50, plan_p99 = plan_times(300)
    lines: list[str] = []
    base = scaled_bundle(users=USERS)
    with servers() as s:
        fresh = new_bundle(s.standin, base, 10_000)
        cold_trips = cold(s, lambda: two_round_trips(s, fresh)[0])
        forget_live_data(s)
        s.standin.forget(fresh)
        sha = new_bundle(s.standin, base, 0)
        cold_joined = cold(s, lambda: joined_flow(s, sha)[0])  # plans built too
        size = len(s.post(s.standin_url(sha), SLACK_USERGROUPS_DESIRED_STATE.document))
        passthrough_size = len(s.post(s.gateway_url(sha), PASSTHROUGH))
        joined: list[float] = []
        joined_http: list[float] = []
        trips: list[float] = []
        alone: list[float] = []
        gateway_added: list[float] = []
        forwarded_server: list[float] = []
        direct_server: list[float] = []
        direct: list[float] = []
        through: list[float] = []
        for n in range(1, runs + 1):
            s.standin.forget(sha)
            sha = new_bundle(s.standin, base, n)
            s.post(s.standin_url(sha), WARM)  # whatever the stand-in does once per bundle
            for flow in (JOINED, TRIPS) if n % 2 else (TRIPS, JOINED):
                gc.collect()
                if flow == JOINED:
                    total, http = joined_flow(s, sha)
                    joined.append(total)
                    joined_http.append(http)
                    gateway_added.append(http - s.times.last)
                    forwarded_server.append(s.times.last)
                else:
                    total, first, server = two_round_trips(s, sha)
                    direct_server.append(server)
                    trips.append(total)
                    alone.append(first)
            direct.append(outside(s, functools.partial(s.post, s.standin_url(sha), PASSTHROUGH)))
            through.append(outside(s, functools.partial(s.post, s.gateway_url(sha), PASSTHROUGH)))
        pairs = [t - d for t, d in zip(through, direct, strict=True)]

        s.standin.reset()
        repeated = []
        for _ in range(runs):
            gc.collect()
            repeated.append(joined_flow(s, sha))
        repeated_calls = answer_requests(s.standin)

        before = rss_mb(s.pid)
        url = s.gateway_url(sha)
        sizes = [len(s.post(url, bust(LARGE, n))) for n in range(CACHED_ANSWERS)]
        s.standin.reset()
        for n in range(CACHED_ANSWERS):
            s.post(url, bust(LARGE, n))
        cached_again = answer_requests(s.standin)
        after = rss_mb(s.pid)

    target_alone = 1.3 * p50_ms(alone)
    normalised = (p50_ms(direct_server) + p50_ms(gateway_added)) / p50_ms(direct_server)
    lines += [
        f"federation on scaled_bundle(users={USERS}), {runs} interleaved runs, 1 connection",
        f"  desired-state answer of qontract-server: {size / 1e6:.2f} MB",
        "uncached (a new bundle sha per run; live data cached after the warm-up):",
        f"  qontract-server alone (stand-in direct)   p50 {p50_ms(alone):8.1f} ms",
        f"  two round trips + client join             p50 {p50_ms(trips):8.1f} ms",
        f"  joined via the gateway, HTTP only         p50 {p50_ms(joined_http):8.1f} ms  "
        f"= {p50_ms(joined_http) / p50_ms(alone):.2f} x alone (target <= 1.3 x); time outside "
        f"qontract-server p50 {p50_ms(gateway_added):.1f} ms",
        f"  the same with the stand-in's own time taken out (it varies by document and run): "
        f"(alone + time outside) / alone = {normalised:.2f} x",
        f"  joined via the gateway + client work      p50 {p50_ms(joined):8.1f} ms  "
        f"= {p50_ms(joined) / p50_ms(trips):.2f} x two round trips (target <= 1)",
        f"  the stand-in's own time: the caller's document p50 {p50_ms(direct_server):.1f} ms, "
        f"the gateway's forwarded one (keys, __typename, integrations) "
        f"p50 {p50_ms(forwarded_server):.1f} ms",
        f"  first runs (new bundle, live lookups uncached in both): joined "
        f"{cold_joined[0] * 1000:.0f} ms vs two round trips {cold_trips[0] * 1000:.0f} ms "
        f"= {cold_joined[0] / cold_trips[0]:.2f} x (PagerDuty calls {cold_joined[1]} vs "
        f"{cold_trips[1]})",
        "repeated pinned joined query (answer cached in the gateway):",
        f"  HTTP p50 {p50_ms([r[1] for r in repeated]):.1f} ms = "
        f"{p50_ms([r[1] for r in repeated]) / p50_ms(alone):.2f} x qontract-server alone; with "
        f"client work p50 {p50_ms([r[0] for r in repeated]):.1f} ms; qontract-server calls: "
        f"{repeated_calls} (target 0)",
        f"planning uncached: p50 {plan_p50:.3f} ms, p99 {plan_p99:.3f} ms (target <= 1 ms); "
        f"merge {merge_seconds:.2f} s",
        f"pass-through of a {passthrough_size / 1e6:.2f} MB answer, {runs} pairs, uncached, time "
        "outside the stand-in's own (client, loopback, and the gateway when through it):",
        f"  direct p50 {p50_ms(direct):.1f} ms, through the gateway p50 {p50_ms(through):.1f} "
        f"ms: the gateway adds {p50_ms(pairs):.1f} ms (median of pairs; target <= 2 ms)",
        f"gateway RSS with {CACHED_ANSWERS} answers of {min(sizes) / 1e6:.1f}-"
        f"{max(sizes) / 1e6:.1f} MB cached: {after[0]:.0f} MB (before {before[0]:.0f} MB, "
        f"peak {after[1]:.0f} MB); qontract-server calls to answer them again: {cached_again}",
    ]
    print("\n".join(lines))
    if p50_ms(joined_http) > target_alone:
        print("  (joined above 1.3 x qontract-server alone)")


if __name__ == "__main__":
    main()
