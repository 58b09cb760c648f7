"""Many waiters and durable listeners never exhaust the Redis pool of a gateway process."""

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from gateway.auth import mint_token
from gateway.redis_keys import TaskKeys
from tests.emulators.slack import SlackEmulator
from tests.support.gateway import graphql
from tests.support.graphql_ws import GraphQLWebSocket
from tests.support.server_thread import ServerThread
from tests.support.slack_workspace import coreos_slack
from tests.test_slack_reconcile import MANAGED

SECRET = "redis-pool-test-secret-0123456789abcdef"
WAITERS = 250
SUBMIT = """mutation Submit($input: SlackUsergroupsReconcileInput_v1!) {
  slack_usergroups_reconcile_v1(input: $input) { id status }
}"""
WAIT = """query Wait($id: String!, $wait: Int) {
  reconcile_task_v1(id: $id, wait_seconds: $wait) { id status }
}"""
LOOKUP = """query Lookup { slack_users_v1(workspace: "coreos") { org_username } }"""
DURABLE = """subscription D($consumer: String!) {
  events_durable_v1(group: "pool", consumer: $consumer) { stream_id }
}"""
DRY_RUN = {
    "dry_run": True,
    "workspaces": [{"name": "coreos", "managed_usergroups": MANAGED, "usergroups": []}],
}


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SlackEmulator, dict[str, Any]]]:
    with coreos_slack(monkeypatch) as emulator_and_workspace:
        yield emulator_and_workspace


@pytest.fixture
def gateway(
    gateway_factory: Callable[..., ServerThread], slack: tuple[SlackEmulator, dict[str, Any]]
) -> ServerThread:
    _, workspace = slack
    return gateway_factory(auth={"secret": SECRET}, upstreams={"slack": [workspace]})


def token() -> str:
    return mint_token(SECRET, "pool-test", ["read", "reconcile:dry-run", "events"], 1)


async def wait_for(client: httpx.AsyncClient, url: str, task_id: str) -> dict[str, Any]:
    response = await client.post(
        f"{url}/graphql",
        json={"query": WAIT, "variables": {"id": task_id, "wait": 60}},
        headers={"authorization": f"Bearer {token()}"},
    )
    body: dict[str, Any] = response.json()
    return body


async def test_250_waiters_on_one_dry_run_all_get_its_result_while_others_are_served(
    gateway: ServerThread,
    slack: tuple[SlackEmulator, dict[str, Any]],
    redis_url: str,
    namespace: str,
) -> None:
    emulator, _ = slack
    assert "errors" not in graphql(gateway, LOOKUP, token())  # cached from now on
    emulator.slow(8, times=1, path_prefix="/api/usergroups.list")
    submitted = graphql(gateway, SUBMIT, token(), input=DRY_RUN)
    task_id = submitted["data"]["slack_usergroups_reconcile_v1"]["id"]

    limits = httpx.Limits(max_connections=WAITERS + 10)
    async with httpx.AsyncClient(limits=limits, timeout=90) as client:
        waiters = [
            asyncio.create_task(wait_for(client, gateway.url, task_id)) for _ in range(WAITERS)
        ]
        # Let every waiter reach the gateway, then check that other callers are still served.
        await asyncio.sleep(0)
        checks = 0
        while checks < 5:
            ready = await client.get(f"{gateway.url}/readyz")
            assert ready.status_code == 200, ready.text
            lookup = await client.post(
                f"{gateway.url}/graphql",
                json={"query": LOOKUP},
                headers={"authorization": f"Bearer {token()}"},
            )
            assert "errors" not in lookup.json(), lookup.text
            checks += 1
        channel = TaskKeys(namespace).changes(task_id)
        [(_, subscribers)] = redis.Redis.from_url(redis_url).pubsub_numsub(channel)
        assert subscribers == 1, "the waiters share one subscription"
        now = graphql(gateway, WAIT, token(), id=task_id, wait=0)
        status = now["data"]["reconcile_task_v1"]["status"]
        assert status in ("pending", "running"), "the checks ran while the waiters waited"
        answers = await asyncio.gather(*waiters)

    problems = [a for a in answers if a.get("errors")]
    assert not problems, f"{len(problems)} of {WAITERS} waiters failed, e.g. {problems[0]}"
    statuses = {a["data"]["reconcile_task_v1"]["status"] for a in answers}
    assert statuses == {"success"}


def errors_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    if message["type"] == "error":
        errors: list[dict[str, Any]] = message["payload"]
        return errors
    assert message["type"] == "next", message
    return list(message["payload"].get("errors") or [])


async def test_durable_subscriptions_past_the_process_bound_get_limit_exceeded(
    gateway_factory: Callable[..., ServerThread],
) -> None:
    gateway = gateway_factory(events={"max_durable_subscriptions": 3})
    client = await GraphQLWebSocket.open(gateway.url)
    try:
        for n in range(3):
            await client.subscribe(DURABLE, {"consumer": f"c{n}"})
        refused = await client.subscribe(DURABLE, {"consumer": "c3"})
        errors = errors_of(await client.message(refused))
        assert errors, "the fourth durable subscription was accepted"
        assert errors[0]["extensions"]["code"] == "LIMIT_EXCEEDED"
        assert "events.max_durable_subscriptions" in str(errors[0]["extensions"])
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{gateway.url}/readyz")).status_code == 200
    finally:
        await client.close()
