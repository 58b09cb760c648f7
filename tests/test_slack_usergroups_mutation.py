"""`slack_usergroups_reconcile_v1` end to end: GraphQL mutation, task engine, Slack emulator."""

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from gateway.auth import mint_token
from gateway.events.redis_streams import decode_entry
from gateway.redis_keys import stream_keys
from tests.emulators.slack import SlackEmulator
from tests.support.gateway import graphql
from tests.support.server_thread import ServerThread
from tests.test_slack_reconcile import GENEROUS, MANAGED, TOKEN, coreos_state

SECRET = "mutation-test-secret-0123456789abcdef"
SUBMIT = """mutation Submit($input: SlackUsergroupsReconcileInput_v1!) {
  slack_usergroups_reconcile_v1(input: $input) { id status dry_run }
}"""
READ = """query Read($id: String!, $wait: Int) {
  reconcile_task_v1(id: $id, wait_seconds: $wait) {
    id status error
    typed_result {
      __typename status errors
      ... on SlackUsergroupsReconcileResult_v1 {
        applied_count
        actions {
          __typename workspace usergroup enable
          ... on SlackUsergroupUpdateUsers_v1 { users_to_add users_to_remove }
          ... on SlackUsergroupCreate_v1 { users description channels }
        }
      }
    }
  }
}"""
DESIRED = {
    "name": "coreos",
    "managed_usergroups": MANAGED,
    "usergroups": [
        {
            "handle": "sre-team",
            "config": {"description": "SRE", "users": ["alice", "carol"], "channels": ["#sre"]},
        },
        {
            "handle": "new-team",
            "config": {"description": "New", "users": ["bob"], "channels": ["team-x"]},
        },
    ],
}


@pytest.fixture
def slack() -> Iterator[tuple[SlackEmulator, ServerThread]]:
    emulator = SlackEmulator()
    coreos_state(emulator.state)
    with ServerThread(emulator.app) as server:
        yield emulator, server


@pytest.fixture
def gateway(
    gateway_factory: Callable[..., ServerThread],
    slack: tuple[SlackEmulator, ServerThread],
    monkeypatch: pytest.MonkeyPatch,
) -> ServerThread:
    return gateway_with(gateway_factory, slack, monkeypatch, "coreos")


def gateway_with(
    gateway_factory: Callable[..., ServerThread],
    slack: tuple[SlackEmulator, ServerThread],
    monkeypatch: pytest.MonkeyPatch,
    *names: str,
) -> ServerThread:
    """A gateway with Slack workspaces `names`, all on the one Slack emulator."""
    monkeypatch.setenv("QGW_TEST_SLACK_TOKEN", TOKEN)
    _, server = slack
    workspaces = [
        {
            "name": name,
            "api_url": f"{server.url}/api",
            "token": {"env": "QGW_TEST_SLACK_TOKEN"},
            "rate_limit": GENEROUS,
        }
        for name in names
    ]
    return gateway_factory(auth={"secret": SECRET}, upstreams={"slack": workspaces})


def call(gateway: ServerThread, scopes: list[str], query: str, **variables: Any) -> Any:
    token = mint_token(SECRET, "slack-usergroups-api", scopes, expires_days=1)
    return graphql(gateway, query, token, **variables)


def run(gateway: ServerThread, dry_run: bool, scopes: list[str]) -> dict[str, Any]:
    submitted = call(gateway, scopes, SUBMIT, input={"dry_run": dry_run, "workspaces": [DESIRED]})
    task = submitted["data"]["slack_usergroups_reconcile_v1"]
    assert task["status"] in ("pending", "running")
    read = call(gateway, scopes, READ, id=task["id"], wait=30)["data"]["reconcile_task_v1"]
    assert read["status"] in ("success", "failed"), read
    result: dict[str, Any] = read["typed_result"]
    return result


def test_dry_run_returns_typed_actions_and_changes_nothing(
    gateway: ServerThread, slack: tuple[SlackEmulator, ServerThread]
) -> None:
    emulator, _ = slack
    result = run(gateway, True, ["reconcile:dry-run"])
    actions = {(a["__typename"], a["usergroup"]): a for a in result["actions"]}
    update = actions[("SlackUsergroupUpdateUsers_v1", "sre-team")]
    assert update["users_to_add"] == ["carol"]
    assert update["users_to_remove"] == ["bob"]
    create = actions[("SlackUsergroupCreate_v1", "new-team")]
    assert create["users"] == ["bob"]
    assert create["channels"] == ["team-x"]
    assert result["applied_count"] == 0
    assert emulator.total_calls("POST /api/usergroups.create") == 0


def test_apply_then_dry_run_again_finds_nothing_to_do(
    gateway: ServerThread, slack: tuple[SlackEmulator, ServerThread]
) -> None:
    emulator, _ = slack
    applied = run(gateway, False, ["reconcile:apply"])
    assert applied["status"] == "success", applied["errors"]
    assert applied["applied_count"] == len(applied["actions"]) >= 2
    assert emulator.total_calls("POST /api/usergroups.create") == 1
    again = run(gateway, True, ["reconcile:dry-run"])
    assert again["actions"] == []


def test_dry_run_scope_cannot_submit_a_real_run(gateway: ServerThread) -> None:
    body = call(
        gateway, ["reconcile:dry-run"], SUBMIT, input={"dry_run": False, "workspaces": [DESIRED]}
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "reconcile:apply" in body["errors"][0]["message"]


def test_read_scope_alone_cannot_submit(gateway: ServerThread) -> None:
    body = call(gateway, ["read"], SUBMIT, input={"workspaces": [DESIRED]})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_unknown_workspace_is_refused_at_submission(gateway: ServerThread) -> None:
    body = call(
        gateway, ["reconcile:dry-run"], SUBMIT, input={"workspaces": [{**DESIRED, "name": "nope"}]}
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "nope" in body["errors"][0]["message"]


def test_second_real_run_while_the_first_is_running_gets_the_same_task(
    gateway: ServerThread, slack: tuple[SlackEmulator, ServerThread]
) -> None:
    emulator, _ = slack
    emulator.slow(2.0, times=1, path_prefix="/api/usergroups.list")
    variables = {"input": {"dry_run": False, "workspaces": [DESIRED]}}
    first = call(gateway, ["reconcile:apply"], SUBMIT, **variables)
    second = call(gateway, ["reconcile:apply"], SUBMIT, **variables)
    dry = call(
        gateway, ["reconcile:apply"], SUBMIT, input={"dry_run": True, "workspaces": [DESIRED]}
    )
    first_id = first["data"]["slack_usergroups_reconcile_v1"]["id"]
    assert second["data"]["slack_usergroups_reconcile_v1"]["id"] == first_id
    assert dry["data"]["slack_usergroups_reconcile_v1"]["id"] != first_id
    done = call(gateway, ["reconcile:apply"], READ, id=first_id, wait=30)
    assert done["data"]["reconcile_task_v1"]["status"] == "success"
    assert emulator.total_calls("POST /api/usergroups.create") == 1


@pytest.fixture
def two_workspaces(
    gateway_factory: Callable[..., ServerThread],
    slack: tuple[SlackEmulator, ServerThread],
    monkeypatch: pytest.MonkeyPatch,
) -> ServerThread:
    """A gateway with workspaces `coreos` and `other` (both on the one Slack emulator)."""
    return gateway_with(gateway_factory, slack, monkeypatch, "coreos", "other")


def submit_real(gateway: ServerThread, *names: str) -> Any:
    """Submit a real run for the workspaces `names` (each with the desired state of coreos)."""
    workspaces = [{**DESIRED, "name": name} for name in names]
    variables = {"input": {"dry_run": False, "workspaces": workspaces}}
    return call(gateway, ["reconcile:apply"], SUBMIT, **variables)


def test_real_runs_with_overlapping_workspaces_never_apply_at_once(
    two_workspaces: ServerThread, slack: tuple[SlackEmulator, ServerThread]
) -> None:
    emulator, _ = slack
    emulator.slow(2.0, times=1, path_prefix="/api/usergroups.list")
    first = submit_real(two_workspaces, "coreos")["data"]["slack_usergroups_reconcile_v1"]
    overlapping = submit_real(two_workspaces, "other", "coreos")
    (error,) = overlapping["errors"]
    assert error["extensions"]["code"] == "CONFLICT"
    assert error["extensions"]["task_id"] == first["id"]
    assert "slack-usergroups:coreos" in error["message"]
    assert "other" not in error["message"]
    separate = submit_real(two_workspaces, "other")["data"]["slack_usergroups_reconcile_v1"]
    assert separate["id"] != first["id"]
    for task_id in (first["id"], separate["id"]):
        done = call(two_workspaces, ["reconcile:apply"], READ, id=task_id, wait=30)
        assert done["data"]["reconcile_task_v1"]["status"] == "success", done
    after = submit_real(two_workspaces, "coreos", "other")["data"]
    assert after["slack_usergroups_reconcile_v1"]["id"] not in (first["id"], separate["id"])


def test_a_run_over_part_of_a_running_set_is_refused(
    two_workspaces: ServerThread, slack: tuple[SlackEmulator, ServerThread]
) -> None:
    emulator, _ = slack
    emulator.slow(2.0, times=1, path_prefix="/api/usergroups.list")
    wide = submit_real(two_workspaces, "coreos", "other")["data"]["slack_usergroups_reconcile_v1"]
    same = submit_real(two_workspaces, "other", "coreos")["data"]["slack_usergroups_reconcile_v1"]
    assert same["id"] == wide["id"], "the same set of workspaces is the same run"
    narrow = submit_real(two_workspaces, "coreos")
    assert narrow["errors"][0]["extensions"]["code"] == "CONFLICT"
    assert narrow["errors"][0]["extensions"]["task_id"] == wide["id"]
    done = call(two_workspaces, ["reconcile:apply"], READ, id=wide["id"], wait=30)
    assert done["data"]["reconcile_task_v1"]["status"] == "success", done


def test_a_real_runs_events_name_the_submitting_request_and_the_task(
    gateway: ServerThread, redis_url: str, namespace: str
) -> None:
    token = mint_token(SECRET, "slack-usergroups-api", ["reconcile:apply"], expires_days=1)
    response = httpx.post(
        f"{gateway.url}/graphql",
        json={"query": SUBMIT, "variables": {"input": {"dry_run": False, "workspaces": [DESIRED]}}},
        headers={"authorization": f"Bearer {token}", "x-request-id": "req-submit-77"},
        timeout=30,
    )
    task_id = response.json()["data"]["slack_usergroups_reconcile_v1"]["id"]
    read = call(gateway, ["reconcile:apply"], READ, id=task_id, wait=30)["data"]
    assert read["reconcile_task_v1"]["status"] == "success"

    with redis.Redis.from_url(redis_url) as client:
        entries: Any = client.xrange(stream_keys(namespace).stream)
    events = [decode_entry(fields) for _, fields in entries]
    assert {event.event_type for event in events} >= {
        "slack-usergroups.update_users",
        "slack-usergroups.create",
    }
    assert {(e.payload["request_id"], e.payload["task_id"]) for e in events} == {
        ("req-submit-77", task_id)
    }


USERS = """query Users { slack_users_v1(workspace: "coreos") { org_username } }"""


def test_the_api_and_the_task_kinds_share_one_client_per_workspace(
    gateway: ServerThread, slack: tuple[SlackEmulator, ServerThread]
) -> None:
    """`serve --role all` builds its sources once: the breaker that failed reads opened also
    stops the reconcile task, which never reaches Slack while it is open."""
    emulator, _ = slack
    emulator.fail(500, times=1_000)
    for _ in range(3):
        read = call(gateway, ["read"], USERS)
    assert "circuit open" in read["errors"][0]["message"], read["errors"]
    emulator.reset()

    result = run(gateway, True, ["reconcile:dry-run"])

    assert emulator.total_calls() == 0
    assert len(result["errors"]) == 1
    assert "circuit open" in result["errors"][0], result["errors"]
