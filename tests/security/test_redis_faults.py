"""Redis hung (SIGSTOP) or gone: every Redis-backed field answers UPSTREAM_UNAVAILABLE fast,
and subscriptions end with the same error once an outage outlasts `events.outage_grace`."""

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from gateway.auth import mint_token
from gateway.events.model import Event
from gateway.events.redis_streams import encode_entry, entry_id
from gateway.redis_keys import stream_keys
from tests.support.gateway import gateway_settings, graphql, start_gateway
from tests.support.graphql_ws import GraphQLWebSocket
from tests.support.redis_server import PrivateRedis
from tests.support.server_thread import ServerThread
from tests.support.slack_workspace import coreos_slack
from tests.support.wait import wait_until
from tests.test_events_graphql import until_subscribed
from tests.test_slack_reconcile import MANAGED

SECRET = "redis-faults-test-secret-0123456789abcdef"
SCOPES = ["read", "reconcile:dry-run", "reconcile:apply", "events", "admin"]
SUBMIT = """mutation Submit($input: SlackUsergroupsReconcileInput_v1!) {
  slack_usergroups_reconcile_v1(input: $input) { id status }
}"""
READ = """query Read($id: String!) {
  reconcile_task_v1(id: $id, wait_seconds: 5) { id status }
}"""
ACK = """mutation Ack { events_ack_v1(group: "faults", ids: ["1-0"]) }"""
LIVE = """subscription { events_v1 { stream_id } }"""
DURABLE = """subscription { events_durable_v1(group: "faults", consumer: "c1") { stream_id } }"""
REPLAY = """subscription { events_v1(since: "0") { stream_id } }"""
WATCH = """subscription Watch($id: String!) { reconcile_task_v1(id: $id) { id status } }"""
LOOKUP = """query Lookup { slack_usergroups_v1(workspace: "coreos") { handle } }"""
INFO = """query Info { gateway_info_v1 { redis_version } }"""
INVALIDATE = """mutation Invalidate { cache_invalidate_v1(system: "slack", account: "coreos") }"""
DRY_RUN = {
    "dry_run": True,
    "workspaces": [{"name": "coreos", "managed_usergroups": MANAGED, "usergroups": []}],
}
REAL_RUN = {**DRY_RUN, "dry_run": False}
# The issue asks for ~1 s; the bound leaves room for a loaded two-core machine.
ANSWER_WITHIN = 3.0


@pytest.fixture
def own_redis() -> Iterator[PrivateRedis]:
    with PrivateRedis() as server:
        yield server


@contextlib.contextmanager
def faults_gateway(
    own_redis: PrivateRedis, namespace: str, monkeypatch: pytest.MonkeyPatch, **overrides: Any
) -> Iterator[ServerThread]:
    """A gateway on `own_redis` with auth, the coreos Slack workspace and `overrides`."""
    with coreos_slack(monkeypatch) as (_, workspace):
        settings = gateway_settings(
            own_redis.url,
            namespace,
            auth={"secret": SECRET},
            upstreams={"slack": [workspace]},
            cache={"local_ttl": 0.05, "result_cache_entries": 0},
            **overrides,
        )
        server = start_gateway(settings)
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def gateway(
    own_redis: PrivateRedis, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ServerThread]:
    with faults_gateway(own_redis, namespace, monkeypatch) as server:
        yield server


def call(gateway: ServerThread, document: str, **variables: Any) -> dict[str, Any]:
    token = mint_token(SECRET, "redis-faults", SCOPES, expires_days=1)
    return graphql(gateway, document, token, **variables)


def submitted_task(gateway: ServerThread) -> str:
    body = call(gateway, SUBMIT, input=DRY_RUN)
    assert "errors" not in body, body
    task_id: str = body["data"]["slack_usergroups_reconcile_v1"]["id"]
    return task_id


def calls(task_id: str) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        "reconcile_task_v1": (READ, {"id": task_id}),
        "slack_usergroups_reconcile_v1": (SUBMIT, {"input": DRY_RUN}),
        "slack_usergroups_reconcile_v1 (real run, leases)": (SUBMIT, {"input": REAL_RUN}),
        "events_ack_v1": (ACK, {}),
        "slack_usergroups_v1": (LOOKUP, {}),
        "gateway_info_v1": (INFO, {}),
        "cache_invalidate_v1": (INVALIDATE, {}),
    }


def assert_all_redis_unavailable(gateway: ServerThread, task_id: str) -> dict[str, float]:
    """Each field's coded answer, and how long it took."""
    took_by_field: dict[str, float] = {}
    for field, (document, variables) in calls(task_id).items():
        started = time.monotonic()
        body = call(gateway, document, **variables)
        took = time.monotonic() - started
        assert body.get("errors"), f"{field} answered without Redis: {body}"
        extensions = body["errors"][0]["extensions"]
        assert extensions["code"] == "UPSTREAM_UNAVAILABLE", (field, body)
        assert extensions["upstream"] == "redis", (field, body)
        assert extensions["request_id"], (field, body)
        assert took < ANSWER_WITHIN, f"{field} took {took:.1f} s with Redis unavailable"
        took_by_field[field] = round(took, 2)
    return took_by_field


def all_answer(gateway: ServerThread, task_id: str) -> Callable[[], bool]:
    def check() -> bool:
        return all(
            "errors" not in call(gateway, document, **variables)
            for document, variables in calls(task_id).values()
        )

    return check


def assert_no_traceback_logged(capsys: pytest.CaptureFixture[str]) -> None:
    logs = capsys.readouterr()
    assert "Traceback" not in logs.out + logs.err
    assert "unexpected error" not in logs.out + logs.err


def test_hung_redis_gives_coded_errors_fast_without_tracebacks_then_recovers(
    own_redis: PrivateRedis, gateway: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    task_id = submitted_task(gateway)
    own_redis.pause()
    try:
        took = assert_all_redis_unavailable(gateway, task_id)
        assert httpx.get(f"{gateway.url}/readyz", timeout=10).status_code == 503
    finally:
        own_redis.resume()

    wait_until(all_answer(gateway, task_id), 15, "every field answering after SIGCONT")
    assert_no_traceback_logged(capsys)
    print(f"UPSTREAM_UNAVAILABLE after (s): {took}")


async def test_a_subscription_failing_on_redis_gets_the_same_coded_error_over_websocket(
    own_redis: PrivateRedis,
    gateway: ServerThread,
    namespace: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    task_id = submitted_task(gateway)
    token = mint_token(SECRET, "redis-faults", SCOPES, expires_days=1)
    client = await GraphQLWebSocket.open(gateway.url, token)
    messages: dict[str, dict[str, Any]] = {}
    try:
        live = await client.subscribe(LIVE)
        await until_subscribed(gateway, 1)
        event = Event(event_type="faults.seen", source="test")
        redis.Redis.from_url(own_redis.url).xadd(stream_keys(namespace).stream, encode_entry(event))  # type: ignore[arg-type]
        await client.events(live, 1)  # the gateway's reader is past it: `since` must read Redis
        own_redis.stop()
        for name, document, variables in (
            ("events_v1(since:)", REPLAY, {}),
            ("reconcile_task_v1", WATCH, {"id": task_id}),
        ):
            operation = await client.subscribe(document, variables)
            messages[name] = await client.message(operation)
    finally:
        await client.close()
    for name, message in messages.items():
        payload = message["payload"]
        errors = payload if message["type"] == "error" else payload["errors"]
        assert errors[0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE", (name, message)
        assert errors[0]["extensions"]["upstream"] == "redis", (name, message)
    assert_no_traceback_logged(capsys)


def test_stopped_redis_gives_coded_errors_fast_without_tracebacks_then_recovers(
    own_redis: PrivateRedis, gateway: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    task_id = submitted_task(gateway)
    own_redis.stop()
    try:
        took = assert_all_redis_unavailable(gateway, task_id)
    finally:
        own_redis.start()

    wait_until(lambda: httpx.get(f"{gateway.url}/readyz").status_code == 200, 10, "readyz")
    fresh_task = submitted_task(gateway)  # the restarted Redis kept nothing
    wait_until(all_answer(gateway, fresh_task), 15, "every field answering after a restart")
    assert_no_traceback_logged(capsys)
    print(f"UPSTREAM_UNAVAILABLE after (s): {took}")


def publish_event(own_redis: PrivateRedis, namespace: str) -> str:
    """Add one event to the namespace's stream, as another replica would; its stream id."""
    event = Event(event_type="faults.seen", source="test")
    client = redis.Redis.from_url(own_redis.url)
    stream_id = client.xadd(stream_keys(namespace).stream, encode_entry(event))  # type: ignore[arg-type]
    client.close()
    return entry_id(stream_id)


def coded_error(message: dict[str, Any]) -> dict[str, Any]:
    """The first error of an `error` message or of a `next` message carrying errors."""
    assert message["type"] in ("error", "next"), message
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    assert errors, message
    first: dict[str, Any] = errors[0]
    return first


def assert_redis_unavailable(message: dict[str, Any]) -> dict[str, Any]:
    """`message` is the coded Redis error; its extensions."""
    error = coded_error(message)
    extensions: dict[str, Any] = error["extensions"]
    assert extensions["code"] == "UPSTREAM_UNAVAILABLE", message
    assert extensions["upstream"] == "redis", message
    assert "event stream (Redis) unreachable" in error["message"], message
    return extensions


@pytest.mark.parametrize("outage", ["stopped", "frozen"])
async def test_live_and_durable_subscriptions_end_with_the_redis_error_when_redis_stays_down(
    outage: str,
    own_redis: PrivateRedis,
    gateway: ServerThread,
    namespace: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = mint_token(SECRET, "redis-faults", SCOPES, expires_days=1)
    client = await GraphQLWebSocket.open(gateway.url, token)
    try:
        live = await client.subscribe(LIVE)
        durable = await client.subscribe(DURABLE)
        await until_subscribed(gateway, 1)  # else the reader may pass the event first
        stream_id = publish_event(own_redis, namespace)
        [seen_live] = await client.events(live, 1)
        [seen_durable] = await client.events(durable, 1)
        if outage == "stopped":
            own_redis.stop()
        else:
            own_redis.pause()
        # the default grace (3 s) plus blocking reads (2 s each when frozen) and retries
        ended = {
            name: await client.message(op, timeout=20)
            for name, op in (("live", live), ("durable", durable))
        }
        after = {
            name: await client.message(op) for name, op in (("live", live), ("durable", durable))
        }
        started = time.monotonic()
        refused_live = await client.message(await client.subscribe(LIVE), timeout=ANSWER_WITHIN)
        refused_within = time.monotonic() - started
        refused_durable = await client.message(await client.subscribe(DURABLE), timeout=20)
    finally:
        await client.close()
        if outage == "frozen":
            own_redis.resume()

    assert seen_live["stream_id"] == seen_durable["stream_id"] == stream_id
    assert assert_redis_unavailable(ended["live"])["last_id"] == stream_id
    assert_redis_unavailable(ended["durable"])
    assert {message["type"] for message in after.values()} == {"complete"}
    assert_redis_unavailable(refused_live)  # past the grace, a new live one fails at once
    assert refused_within < ANSWER_WITHIN
    assert_redis_unavailable(refused_durable)
    assert_no_traceback_logged(capsys)


async def test_subscriptions_ride_out_a_redis_restart_shorter_than_the_grace(
    own_redis: PrivateRedis,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = mint_token(SECRET, "redis-faults", SCOPES, expires_days=1)
    logged: list[str] = []

    def gateway_logged(*lines: str) -> Callable[[], bool]:
        def check() -> bool:
            logged.append(capsys.readouterr().out)
            return all(line in "".join(logged) for line in lines)

        return check

    with faults_gateway(own_redis, namespace, monkeypatch, events={"outage_grace": 120}) as gateway:
        client = await GraphQLWebSocket.open(gateway.url, token)
        try:
            live = await client.subscribe(LIVE)
            durable = await client.subscribe(DURABLE)
            await until_subscribed(gateway, 1)
            before = publish_event(own_redis, namespace)
            await client.events(live, 1)
            await client.events(durable, 1)
            own_redis.stop()
            failed = ("event stream read failed", "durable event read failed")
            wait_until(gateway_logged(*failed), 20, "both readers failing on Redis")
            own_redis.start()  # empty: the stream and the consumer group are gone
            after = publish_event(own_redis, namespace)
            [live_after] = await client.events(live, 1, timeout=20)
            [durable_after] = await client.events(durable, 1, timeout=20)
        finally:
            await client.close()

    assert live_after["stream_id"] == durable_after["stream_id"] == after != before
    assert_no_traceback_logged(capsys)
