"""Reconcile input is bounded per mutation and per caller; a finished task keeps no input."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from gateway.auth import mint_token
from gateway.redis_keys import TaskKeys
from tests.support.gateway import graphql
from tests.support.server_thread import ServerThread
from tests.support.slack_workspace import coreos_slack
from tests.support.wait import wait_until
from tests.test_slack_reconcile import MANAGED

SECRET = "task-input-test-secret-0123456789abcdef"
SUBMIT = """mutation Submit($input: SlackUsergroupsReconcileInput_v1!) {
  slack_usergroups_reconcile_v1(input: $input) { id status }
}"""
READ = """query Read($id: String!) { reconcile_task_v1(id: $id, wait_seconds: 30) { status } }"""


def dry_run(users: list[str]) -> dict[str, Any]:
    group = {"handle": "sre-team", "config": {"description": "SRE", "users": users}}
    workspace = {"name": "coreos", "managed_usergroups": MANAGED, "usergroups": [group]}
    return {"dry_run": True, "workspaces": [workspace]}


@pytest.fixture
def start_gateway(
    gateway_factory: Callable[..., ServerThread], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., ServerThread]]:
    with coreos_slack(monkeypatch) as (_, workspace):

        def start(**tasks: Any) -> ServerThread:
            return gateway_factory(
                auth={"secret": SECRET}, upstreams={"slack": [workspace]}, tasks=tasks
            )

        yield start


def submit(gateway: ServerThread, subject: str, users: list[str]) -> dict[str, Any]:
    token = mint_token(SECRET, subject, ["reconcile:dry-run"], expires_days=1)
    return graphql(gateway, SUBMIT, token, input=dry_run(users))


def error_of(body: dict[str, Any]) -> dict[str, Any]:
    assert body.get("errors"), body
    assert body["data"] is None, body
    error: dict[str, Any] = body["errors"][0]
    return error


def test_a_list_longer_than_the_default_bound_is_bad_user_input_naming_it(
    start_gateway: Callable[..., ServerThread],
) -> None:
    gateway = start_gateway()
    body = submit(gateway, "big-input", [f"user{n}" for n in range(10_001)])
    error = error_of(body)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "input.workspaces.0.usergroups.0.config.users has 10001 items" in error["message"]
    assert "tasks.max_input_list_length" in error["message"]


def test_one_input_larger_than_allowed_is_bad_user_input(
    start_gateway: Callable[..., ServerThread],
) -> None:
    gateway = start_gateway(max_input_bytes=2_000)
    error = error_of(submit(gateway, "wide-input", [f"user-{n:04d}" for n in range(300)]))
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "tasks.max_input_bytes" in error["message"]


def test_a_caller_past_its_task_quota_gets_limit_exceeded_and_others_do_not(
    start_gateway: Callable[..., ServerThread],
) -> None:
    gateway = start_gateway(caller_tasks=3)
    for _ in range(3):
        assert "errors" not in submit(gateway, "busy-caller", ["alice"])
    error = error_of(submit(gateway, "busy-caller", ["alice"]))
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert error["extensions"]["limit"] == "tasks.caller_tasks"
    assert error["extensions"]["retry_after"] > 0
    assert "errors" not in submit(gateway, "other-caller", ["alice"])


def test_a_caller_past_its_input_bytes_quota_gets_limit_exceeded(
    start_gateway: Callable[..., ServerThread],
) -> None:
    gateway = start_gateway(caller_input_bytes=3_000)
    users = [f"user-{n:04d}" for n in range(80)]  # about 1 KB of input
    assert "errors" not in submit(gateway, "heavy-caller", users)
    assert "errors" not in submit(gateway, "heavy-caller", users)
    error = error_of(submit(gateway, "heavy-caller", users))
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert error["extensions"]["limit"] == "tasks.caller_input_bytes"


def test_a_finished_task_keeps_its_result_but_not_its_input(
    start_gateway: Callable[..., ServerThread], redis_url: str, namespace: str
) -> None:
    gateway = start_gateway()
    token = mint_token(SECRET, "tidy-caller", ["reconcile:dry-run"], expires_days=1)
    body = graphql(gateway, SUBMIT, token, input=dry_run(["alice"]))
    task_id = body["data"]["slack_usergroups_reconcile_v1"]["id"]
    record = TaskKeys(namespace).record(task_id)
    client = redis.Redis.from_url(redis_url)

    done = graphql(gateway, READ, token, id=task_id)
    assert done["data"]["reconcile_task_v1"]["status"] == "success"
    wait_until(lambda: not client.hexists(record, "payload"), 5, "the input to be dropped")
    assert client.hexists(record, "result")
