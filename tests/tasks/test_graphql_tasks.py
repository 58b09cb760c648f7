"""`reconcile_task_v1` over real HTTP and graphql-transport-ws against a running gateway."""

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import websockets

from gateway.auth import mint_token
from tests.support.server_thread import ServerThread
from tests.tasks.conftest import TASKS, Gate, QueueFactory

QUERY = """query ($id: String!, $wait: Int) {
  reconcile_task_v1(id: $id, wait_seconds: $wait) {
    id kind status dry_run submitted_at started_at finished_at result error
  }
}"""
SUBSCRIPTION = """subscription ($id: String!) {
  reconcile_task_v1(id: $id) { id status result }
}"""
SECRET = "a-test-secret-that-is-long-enough-for-hs256"


async def _query(server: ServerThread, variables: dict[str, Any], token: str = "") -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"{server.url}/graphql",
            json={"query": QUERY, "variables": variables},
            headers=headers,
        )
    return response.json()


async def test_query_waits_for_the_result(
    gateway_factory: Callable[..., ServerThread], queue_factory: QueueFactory
) -> None:
    server = gateway_factory(tasks=TASKS)
    queue = await queue_factory("all")
    submitted = await queue.submit("test.echo", {"n": 1}, dry_run=True)

    body = await _query(server, {"id": submitted.id, "wait": 10})

    task = body["data"]["reconcile_task_v1"]
    assert task["status"] == "success"
    assert task["kind"] == "test.echo"
    assert task["dry_run"] is True
    assert json.loads(task["result"]) == {"echo": {"n": 1}, "dry_run": True}
    assert task["error"] is None
    assert task["finished_at"] >= task["started_at"] >= task["submitted_at"]


async def test_unknown_id_is_not_found_and_bad_waits_are_refused(
    gateway_factory: Callable[..., ServerThread],
) -> None:
    server = gateway_factory(tasks=TASKS)

    unknown = await _query(server, {"id": "no-such-task"})
    too_long = await _query(server, {"id": "no-such-task", "wait": 301})
    negative = await _query(server, {"id": "no-such-task", "wait": -1})

    assert unknown["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert too_long["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert negative["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_expired_wait_returns_the_pending_task_without_error(
    gateway_factory: Callable[..., ServerThread], queue_factory: QueueFactory
) -> None:
    server = gateway_factory(role="api", tasks=TASKS)
    queue = await queue_factory("api")  # no worker: the task stays pending
    submitted = await queue.submit("test.echo", {}, dry_run=False)

    body = await _query(server, {"id": submitted.id, "wait": 1})

    assert "errors" not in body
    assert body["data"]["reconcile_task_v1"]["status"] == "pending"


async def test_reading_a_task_needs_a_reconcile_scope(
    gateway_factory: Callable[..., ServerThread], queue_factory: QueueFactory
) -> None:
    server = gateway_factory(tasks=TASKS, auth={"secret": SECRET})
    queue = await queue_factory("all")
    submitted = await queue.submit("test.echo", {}, dry_run=True)
    reader = mint_token(SECRET, "reader", ["read"], 1)
    dry_runner = mint_token(SECRET, "ci", ["reconcile:dry-run"], 1)

    refused = await _query(server, {"id": submitted.id}, reader)
    allowed = await _query(server, {"id": submitted.id, "wait": 10}, dry_runner)

    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert allowed["data"]["reconcile_task_v1"]["status"] == "success"


async def test_subscription_emits_pending_running_success_and_completes(
    gateway_factory: Callable[..., ServerThread],
    queue_factory: QueueFactory,
    gate_factory: Callable[[str], Gate],
) -> None:
    server = gateway_factory(tasks=TASKS)
    queue = await queue_factory("all", in_process_concurrency=1)
    ahead, gate = gate_factory("ahead"), gate_factory("watched")
    await queue.submit("test.gated", ahead.payload, dry_run=False)
    await ahead.wait_started()
    watched = await queue.submit("test.gated", gate.payload, dry_run=False)  # waits its turn

    url = server.url.replace("http", "ws") + "/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]

        async def receive() -> dict[str, Any]:
            message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 20))
            return message

        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert (await receive())["type"] == "connection_ack"
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": SUBSCRIPTION, "variables": {"id": watched.id}},
                }
            )
        )
        statuses = [(await receive())["payload"]["data"]["reconcile_task_v1"]["status"]]
        await ahead.open()
        statuses.append((await receive())["payload"]["data"]["reconcile_task_v1"]["status"])
        await gate.open()
        last = await receive()
        statuses.append(last["payload"]["data"]["reconcile_task_v1"]["status"])
        end = await receive()

    assert statuses == ["pending", "running", "success"]
    assert json.loads(last["payload"]["data"]["reconcile_task_v1"]["result"])["attempt"] == 1
    assert end == {"id": "1", "type": "complete"}
