"""Every key the gateway touches is named by `gateway.redis_keys`, and every multi-key
operation (script, MULTI, multi-key command) stays in one Redis Cluster slot.

A broad run (cached lookups, a 429 pause, a real and a dry reconcile run, events, a federated
joined query) goes through a gateway in this process; every command its asyncio Redis clients
send is recorded (the client classes are wrapped, nothing is mocked: commands still reach the
test's real Redis), and Redis itself says which arguments are keys (`COMMAND GETKEYS`).
"""

import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis
from redis.asyncio.client import Pipeline
from redis.asyncio.client import Redis as AsyncRedis
from redis.crc import key_slot
from redis.exceptions import ResponseError

from gateway.auth import mint_token
from gateway.redis_keys import MAX_PART_CHARS, TaskKeys, known, part
from tests.emulators.github import GitHubEmulator
from tests.emulators.pagerduty import PagerDutyEmulator
from tests.emulators.qontract_bundle import BUNDLE_PATH, GOLDENS_DIR
from tests.emulators.qontract_server_standin import QontractServerStandin
from tests.emulators.slack import SlackEmulator
from tests.federation.conftest import GH_TOKEN, PD_TOKEN
from tests.support.server_thread import ServerThread
from tests.support.slack_workspace import coreos_slack
from tests.test_slack_reconcile import MANAGED

SECRET = "redis-keys-test-secret-0123456789abcdef"
GOLDEN = json.loads((GOLDENS_DIR / "03-desired-state.json").read_text())
SHA = GOLDEN["request"]["path"].rsplit("/", 1)[1]
JOINED = (
    GOLDEN["request"]["json"]["query"]
    .replace(
        "escalationPolicyID\n", "escalationPolicyID\n        oncall_users { username email }\n", 1
    )
    .replace("ownersFromRepos\n", "ownersFromRepos\n      repo_owners { approvers reviewers }\n", 1)
)
SUBMIT = """mutation Submit($input: SlackUsergroupsReconcileInput_v1!) {
  slack_usergroups_reconcile_v1(input: $input) { id }
}"""
READ = """query Read($id: String!) { reconcile_task_v1(id: $id, wait_seconds: 30) { status } }"""
LOOKUP = """query { slack_usergroups_v1(workspace: "coreos") { handle } }"""
USERS = """query { slack_users_v1(workspace: "coreos") { name } }"""
ACK = """mutation { events_ack_v1(group: "keys", ids: ["1-0"]) }"""


@dataclass(frozen=True)
class Sent:
    """One command or one pipeline as a client sent it."""

    commands: tuple[tuple[Any, ...], ...]
    transaction: bool


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[Sent]:
    """Every command the asyncio Redis clients of this process send from now on."""
    record: list[Sent] = []
    execute_command: Callable[..., Awaitable[Any]] = AsyncRedis.execute_command
    execute: Callable[..., Awaitable[Any]] = Pipeline.execute

    async def command(self: AsyncRedis, *args: Any, **options: Any) -> Any:
        record.append(Sent((args,), transaction=False))
        return await execute_command(self, *args, **options)

    async def pipeline(self: Pipeline, raise_on_error: bool = True) -> Any:
        stack = tuple(args for args, _ in self.command_stack)
        record.append(Sent(stack, transaction=bool(self.is_transaction)))
        return await execute(self, raise_on_error)

    monkeypatch.setattr(AsyncRedis, "execute_command", command)
    monkeypatch.setattr(Pipeline, "execute", pipeline)
    return record


def account(server: ServerThread, variable: str) -> dict[str, Any]:
    """Account `app-sre` of the emulator at `server`, its token in `variable`."""
    return {"name": "app-sre", "api_url": server.url, "token": {"env": variable}}


@pytest.fixture
def upstreams(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[SlackEmulator, dict[str, Any]]]:
    """Slack, PagerDuty, GitHub and the qontract-server stand-in; their upstream settings."""
    monkeypatch.setenv("QGW_TEST_PD_TOKEN", PD_TOKEN)
    monkeypatch.setenv("QGW_TEST_GH_TOKEN", GH_TOKEN)
    pagerduty = PagerDutyEmulator()
    pagerduty.state.token = PD_TOKEN
    pagerduty.state.add_user("U-alice", "alice@example.com")
    pagerduty.state.oncall = {"PSCHED1": ["U-alice"]}
    github = GitHubEmulator()
    github.state.token = GH_TOKEN
    github.state.files[("app-sre/qontract-reconcile", "master")] = {"OWNERS": "approvers: [a]"}
    with (
        coreos_slack(monkeypatch) as (slack, workspace),
        ServerThread(pagerduty.app) as pd_server,
        ServerThread(github.app) as gh_server,
        QontractServerStandin(BUNDLE_PATH) as standin,
    ):
        yield (
            slack,
            {
                "slack": [workspace],
                "pagerduty": [
                    {
                        "name": "app-sre",
                        "api_url": pd_server.url,
                        "token": {"env": "QGW_TEST_PD_TOKEN"},
                    }
                ],
                "github": [
                    {
                        "name": "app-sre",
                        "api_url": gh_server.url,
                        "token": {"env": "QGW_TEST_GH_TOKEN"},
                    }
                ],
                "qontract_server": {"url": standin.url, "poll_interval": 0.3},
            },
        )


def keys_of(client: "redis.Redis", args: tuple[Any, ...]) -> list[str]:
    """The keys among a command's arguments, as Redis itself tells them."""
    try:
        found = client.command_getkeys(*args)
    except ResponseError:  # a command without keys (PING, EVALSHA with no keys, PUBLISH...)
        return []
    return [name.decode() if isinstance(name, bytes) else str(name) for name in found]


def test_every_key_is_named_and_every_multi_key_operation_stays_in_one_slot(
    sent: list[Sent],
    upstreams: tuple[SlackEmulator, dict[str, Any]],
    gateway_factory: Callable[..., ServerThread],
    redis_url: str,
    namespace: str,
) -> None:
    slack, settings = upstreams
    gateway = gateway_factory(auth={"secret": SECRET}, upstreams=settings)
    token = mint_token(
        SECRET, "keys", ["read", "app-interface:read", "reconcile:apply", "events"], expires_days=1
    )
    headers = {"authorization": f"Bearer {token}"}

    def post(document: str, path: str = "/graphql", **variables: Any) -> dict[str, Any]:
        payload = {"query": document, "variables": variables}
        response = httpx.post(gateway.url + path, json=payload, headers=headers, timeout=60)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    assert "errors" not in post(LOOKUP)
    slack.fail(429, times=1, retry_after=0.2, path_prefix="/api/users.list")
    post(USERS)  # a 429 pauses the workspace's bucket
    for dry_run in (True, False):
        workspace = {"name": "coreos", "managed_usergroups": MANAGED, "usergroups": []}
        body = post(SUBMIT, input={"dry_run": dry_run, "workspaces": [workspace]})
        task_id = body["data"]["slack_usergroups_reconcile_v1"]["id"]
        assert post(READ, id=task_id)["data"]["reconcile_task_v1"]["status"] == "success"
    assert "errors" not in post(ACK)
    joined = post(JOINED, path=f"/graphqlsha/{SHA}")
    assert joined["data"]["permissions"], joined  # some repositories are unknown: errors too

    client = redis.Redis.from_url(redis_url)
    seen: set[str] = set()
    for batch in sent:
        touched: list[str] = []
        for args in batch.commands:
            names = keys_of(client, args)
            if len(names) > 1:
                slots = {key_slot(name.encode()) for name in names}
                assert len(slots) == 1, f"{args[0]!r} over several slots: {names}"
            touched += names
        if batch.transaction and touched:
            slots = {key_slot(name.encode()) for name in touched}
            assert len(slots) == 1, f"a MULTI over several slots: {touched}"
        seen.update(touched)
    seen.update(name.decode() for name in client.scan_iter(match=f"{namespace}:*"))
    # Gateways of earlier tests may still run background work in this process: their keys
    # (other namespaces) are checked for slots above, this test's gateway's for names here.
    ours = {name for name in seen if name.startswith(namespace + ":")}
    unknown = sorted(name for name in ours if not known(name))
    assert not unknown, unknown
    areas = {name.split(":")[1] for name in ours}
    assert {"cache", "ratelimit", "tasks", "leases", "events", "qontract-server"} <= areas
    assert any(name.endswith(":pause") for name in ours), "the 429 paused a bucket"
    assert any(name.endswith(":lock:" + name.rsplit(":", 1)[1]) for name in ours)


def test_caller_strings_are_escaped_and_bounded_in_keys() -> None:
    keys = TaskKeys("ns")
    hostile = "x}{evil}*?[" + "a" * 10_000
    record = keys.record(hostile)
    assert len(record) < 2 * MAX_PART_CHARS
    assert record.count("{") == 1
    assert record.count("}") == 1
    assert keys.record("a b") != keys.record("a%20b")
    assert part("a" * (MAX_PART_CHARS + 1)) != part("a" * (MAX_PART_CHARS + 2))
    assert known(record)
    assert known(keys.lease("slack-usergroups:" + hostile))
