"""PagerDuty on-call users through the gateway: cached, batched, shared, and honest about errors."""

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from gateway.graphql_view import GatewayGraphQL
from tests.emulators.pagerduty import PagerDutyEmulator
from tests.support.gateway import graphql
from tests.support.server_thread import ServerThread
from tests.support.wait import wait_until

TOKEN = "pd-secret-token-value-123"
SCHEDULES = """query Schedules($ids: [String!]!) {
  pagerduty_schedules_v1(instance: "app-sre", ids: $ids) { id users { id email username } }
}"""
POLICIES = """query Policies($ids: [String!]!) {
  pagerduty_escalation_policies_v1(instance: "app-sre", ids: $ids) { id users { username } }
}"""


@pytest.fixture
def pagerduty() -> Iterator[tuple[PagerDutyEmulator, ServerThread]]:
    emulator = PagerDutyEmulator()
    state = emulator.state
    state.token = TOKEN
    state.add_user("U1", "alice@example.com")
    state.add_user("U2", "bob@example.com")
    state.add_user("U3", "gone@example.com", deleted=True)
    state.add_user("U4", "carol@example.com")
    state.oncall = {"PA": ["U1", "U3"], "PB": ["U2"], "PEMPTY": []}
    state.policies = {
        "EP1": [(0, [("schedule", "PA")]), (30, [("user", "U4")]), (30, [("schedule", "PB")])],
    }
    with ServerThread(emulator.app) as server:
        yield emulator, server


@pytest.fixture
def pd_gateway_factory(
    gateway_factory: Callable[..., ServerThread],
    pagerduty: tuple[PagerDutyEmulator, ServerThread],
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., ServerThread]:
    monkeypatch.setenv("QGW_TEST_PD_TOKEN", TOKEN)
    _, upstream = pagerduty

    def factory(**account: Any) -> ServerThread:
        settings = {
            "name": "app-sre",
            "api_url": upstream.url,
            "token": {"env": "QGW_TEST_PD_TOKEN"},
            **account,
        }
        return gateway_factory(upstreams={"pagerduty": [settings]})

    return factory


@pytest.fixture
def pd_gateway(pd_gateway_factory: Callable[..., ServerThread]) -> ServerThread:
    return pd_gateway_factory()


def query(server: ServerThread, document: str, ids: list[str]) -> dict[str, Any]:
    return graphql(server, document, ids=ids)


def usernames(schedule: dict[str, Any]) -> list[str]:
    return [user["username"] for user in schedule["users"]]


def test_schedule_users_are_the_on_call_users_without_deleted_ones(
    pd_gateway: ServerThread, pagerduty: tuple[PagerDutyEmulator, ServerThread]
) -> None:
    body = query(pd_gateway, SCHEDULES, ["PA"])
    schedule = body["data"]["pagerduty_schedules_v1"][0]
    assert schedule["id"] == "PA"
    assert schedule["users"] == [{"id": "U1", "email": "alice@example.com", "username": "alice"}]
    assert [p["outcome"] for p in body["extensions"]["provenance"]] == ["miss"]


def test_second_query_is_a_cache_hit_without_upstream_call(
    pd_gateway: ServerThread, pagerduty: tuple[PagerDutyEmulator, ServerThread]
) -> None:
    emulator, _ = pagerduty
    query(pd_gateway, SCHEDULES, ["PA"])
    body = query(pd_gateway, SCHEDULES, ["PA"])
    assert usernames(body["data"]["pagerduty_schedules_v1"][0]) == ["alice"]
    assert body["extensions"]["provenance"][0]["outcome"] == "hit"
    assert emulator.total_calls("GET /schedules/PA/users") == 1


def test_empty_schedule_is_cached_as_a_result(
    pd_gateway: ServerThread, pagerduty: tuple[PagerDutyEmulator, ServerThread]
) -> None:
    emulator, _ = pagerduty
    for _ in range(3):
        body = query(pd_gateway, SCHEDULES, ["PEMPTY"])
        assert body["data"]["pagerduty_schedules_v1"] == [{"id": "PEMPTY", "users": []}]
    assert emulator.total_calls("GET /schedules/PEMPTY/users") == 1


def test_many_ids_in_one_query_fetch_each_uncached_schedule_once(
    pd_gateway: ServerThread, pagerduty: tuple[PagerDutyEmulator, ServerThread]
) -> None:
    emulator, _ = pagerduty
    query(pd_gateway, SCHEDULES, ["PA"])
    document = SCHEDULES.replace(
        "}\n}", '}\n  again: pagerduty_schedules_v1(instance: "app-sre", ids: $ids) { id }\n}'
    )
    body = query(pd_gateway, document, ["PA", "PB", "PEMPTY", "PB"])
    assert [s["id"] for s in body["data"]["pagerduty_schedules_v1"]] == ["PA", "PB", "PEMPTY", "PB"]
    assert emulator.total_calls("GET /schedules/") == 3


def test_unknown_schedule_is_a_null_item_with_not_found_and_the_rest_is_served(
    pd_gateway: ServerThread,
) -> None:
    body = query(pd_gateway, SCHEDULES, ["PA", "NOPE"])
    assert usernames(body["data"]["pagerduty_schedules_v1"][0]) == ["alice"]
    assert body["data"]["pagerduty_schedules_v1"][1] is None
    error = body["errors"][0]
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert error["path"] == ["pagerduty_schedules_v1", 1]
    assert "NOPE" in error["message"]


def test_unknown_instance_is_bad_user_input(pd_gateway: ServerThread) -> None:
    document = SCHEDULES.replace('"app-sre"', '"no-such-instance"')
    body = query(pd_gateway, document, ["PA"])
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "no-such-instance" in body["errors"][0]["message"]
    assert "app-sre" in body["errors"][0]["message"]


def test_escalation_policy_walks_rules_until_a_delayed_rule_yields_users(
    pd_gateway: ServerThread,
) -> None:
    body = query(pd_gateway, POLICIES, ["EP1"])
    policy = body["data"]["pagerduty_escalation_policies_v1"][0]
    assert sorted(usernames(policy)) == ["alice", "carol"]


def test_upstream_failure_after_ttl_serves_the_stale_copy_flagged(
    pd_gateway_factory: Callable[..., ServerThread],
    pagerduty: tuple[PagerDutyEmulator, ServerThread],
) -> None:
    emulator, _ = pagerduty
    gateway = pd_gateway_factory(ttl={"schedule_users": 0.2})
    query(gateway, SCHEDULES, ["PA"])
    emulator.fail(status=503, times=1000, path_prefix="/schedules/PA")

    def served_stale() -> bool:
        body = query(gateway, SCHEDULES, ["PA"])
        return bool(body["extensions"]["provenance"][0]["outcome"] == "stale")

    wait_until(served_stale, 20, "a stale copy once the TTL has passed")
    body = query(gateway, SCHEDULES, ["PA"])
    assert usernames(body["data"]["pagerduty_schedules_v1"][0]) == ["alice"]
    assert "errors" not in body
    assert body["extensions"]["provenance"][0]["age_seconds"] > 0.2


def test_upstream_outage_without_a_copy_is_upstream_unavailable(
    pd_gateway: ServerThread, pagerduty: tuple[PagerDutyEmulator, ServerThread]
) -> None:
    emulator, _ = pagerduty
    emulator.fail(status=500, times=1000, path_prefix="/schedules/PB")
    body = query(pd_gateway, SCHEDULES, ["PB"])
    assert body["data"]["pagerduty_schedules_v1"] == [None]
    assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"


def test_upstream_429_beyond_the_deadline_is_rate_limited_quickly(
    pd_gateway: ServerThread, pagerduty: tuple[PagerDutyEmulator, ServerThread]
) -> None:
    emulator, _ = pagerduty
    emulator.fail(status=429, times=1, retry_after=120, path_prefix="/schedules/PB")
    body = query(pd_gateway, SCHEDULES, ["PB"])
    assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_RATE_LIMITED"
    body = query(pd_gateway, SCHEDULES, ["PEMPTY"])
    assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_RATE_LIMITED"
    assert emulator.total_calls("GET /schedules/PEMPTY") == 0, "the 429 paused the whole bucket"


def test_token_never_appears_in_errors_logs_or_cache_keys(
    pd_gateway: ServerThread,
    pagerduty: tuple[PagerDutyEmulator, ServerThread],
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import redis

    emulator, _ = pagerduty
    query(pd_gateway, SCHEDULES, ["PA"])
    emulator.fail(status=401, times=1, path_prefix="/schedules/PB")
    emulator.fail(status=500, times=10, path_prefix="/schedules/PEMPTY")
    body = query(pd_gateway, SCHEDULES, ["PB", "NOPE", "PEMPTY"])
    assert TOKEN not in str(body)
    keys = redis.Redis.from_url(redis_url).keys("*")
    assert keys
    assert not any(TOKEN.encode() in k for k in keys)
    logs = capsys.readouterr()
    assert "operation error" in logs.out + logs.err, "the errors were logged"
    assert TOKEN not in logs.out + logs.err


def test_thundering_herd_over_three_replicas_makes_one_upstream_fetch(
    pd_gateway_factory: Callable[..., ServerThread],
    pagerduty: tuple[PagerDutyEmulator, ServerThread],
) -> None:
    emulator, _ = pagerduty
    emulator.slow(0.3, times=1, path_prefix="/schedules/PA")
    replicas = [pd_gateway_factory() for _ in range(3)]

    async def herd() -> list[dict[str, Any]]:
        limits = httpx.Limits(max_connections=300)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            payload = {"query": SCHEDULES, "variables": {"ids": ["PA"]}}
            responses = await asyncio.gather(
                *(client.post(f"{replicas[i % 3].url}/graphql", json=payload) for i in range(200))
            )
        return [r.json() for r in responses]

    bodies = asyncio.run(herd())
    assert all(usernames(b["data"]["pagerduty_schedules_v1"][0]) == ["alice"] for b in bodies)
    assert emulator.total_calls("GET /schedules/PA/users") == 1


def cache_lookups(server: ServerThread) -> float:
    """The gateway's cache lookups so far (every execution of a query makes one per key)."""
    text = httpx.get(f"{server.url}/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("qontract_gateway_cache_lookups_total{")
    )


def test_an_expired_result_is_rebuilt_by_one_request_while_the_others_wait(
    gateway_factory: Callable[..., ServerThread],
    pagerduty: tuple[PagerDutyEmulator, ServerThread],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emulator, upstream = pagerduty
    monkeypatch.setenv("QGW_TEST_PD_TOKEN", TOKEN)
    account = {
        "name": "app-sre",
        "api_url": upstream.url,
        "token": {"env": "QGW_TEST_PD_TOKEN"},
        "ttl": {"schedule_users": 0.2},
    }
    server = gateway_factory(upstreams={"pagerduty": [account]}, cache={"local_ttl": 0.1})
    assert isinstance(server.app, Starlette)
    endpoints = [getattr(route, "endpoint", None) for route in server.app.routes]
    view = next(e for e in endpoints if isinstance(e, GatewayGraphQL))
    payload = {"query": SCHEDULES, "variables": {"ids": ["PA"]}}
    warm = query(server, SCHEDULES, ["PA"])["data"]["pagerduty_schedules_v1"][0]
    assert usernames(warm) == ["alice"]
    emulator.slow(2, times=1, path_prefix="/schedules/PA")

    def ask() -> dict[str, Any]:
        return dict(httpx.post(f"{server.url}/graphql", json=payload, timeout=30).json())

    def ask_until_a_rebuild_fetches() -> dict[str, Any]:
        while True:  # stored answers come back at once until the entry and its data expire
            body = ask()
            if emulator.total_calls("GET /schedules/PA/users") > 1:
                return body

    with ThreadPoolExecutor(max_workers=9) as pool:
        rebuild = pool.submit(ask_until_a_rebuild_fetches)
        wait_until(lambda: emulator.in_flight == 1, 10, "the rebuild's upstream fetch")
        lookups = cache_lookups(server)
        waiting = [pool.submit(ask) for _ in range(8)]
        wait_until(lambda: view.results.waiting == 8, 10, "8 requests waiting for the rebuild")
        answers = [rebuild.result(timeout=30), *(w.result(timeout=30) for w in waiting)]
    assert all(usernames(a["data"]["pagerduty_schedules_v1"][0]) == ["alice"] for a in answers)
    assert emulator.total_calls("GET /schedules/PA/users") == 2
    assert cache_lookups(server) - lookups <= 1, "only the rebuild executed the query"


def test_redis_outage_gives_upstream_unavailable_then_recovers_without_restart(
    pagerduty: tuple[PagerDutyEmulator, ServerThread],
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.support.gateway import gateway_settings, start_gateway
    from tests.support.redis_server import PrivateRedis

    emulator, upstream = pagerduty
    monkeypatch.setenv("QGW_TEST_PD_TOKEN", TOKEN)
    account = {"name": "app-sre", "api_url": upstream.url, "token": {"env": "QGW_TEST_PD_TOKEN"}}
    with PrivateRedis() as redis_server:
        settings = gateway_settings(
            redis_server.url,
            namespace,
            upstreams={"pagerduty": [account]},
            cache={"local_ttl": 0.05, "result_cache_entries": 0},
        )
        gateway = start_gateway(settings)
        try:
            redis_server.stop()
            body = query(gateway, SCHEDULES, ["PB"])
            assert body["data"]["pagerduty_schedules_v1"] == [None]
            error = body["errors"][0]
            assert error["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
            assert "Redis" in error["message"]
            assert emulator.total_calls("GET /schedules/PB") == 0, "no unlimited upstream calls"

            redis_server.start()
            wait_until(lambda: "errors" not in query(gateway, SCHEDULES, ["PB"]), 15, "recovery")
            assert usernames(
                query(gateway, SCHEDULES, ["PB"])["data"]["pagerduty_schedules_v1"][0]
            ) == ["bob"]
        finally:
            gateway.stop()
