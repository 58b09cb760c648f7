"""graphql-transport-ws against hostile clients: auth at connection_init, sizes, coded errors."""

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from gateway.app import create_app
from gateway.auth import mint_token
from tests.support.gateway import gateway_settings
from tests.support.graphql_ws import SUBPROTOCOL, GraphQLWebSocket
from tests.support.serve_process import serving
from tests.support.server_thread import ServerThread

SECRET = "test-secret-not-for-production-0123456789"
LIVE = "subscription L($since: String) { events_v1(since: $since) { id } }"


@pytest.fixture
def secured(gateway_factory: Callable[..., ServerThread]) -> ServerThread:
    return gateway_factory(auth={"secret": SECRET})


@pytest.fixture
def listener_token() -> str:
    return mint_token(SECRET, "listener", ["events", "read"], expires_days=1)


async def raw_socket(server: ServerThread) -> ClientConnection:
    """A graphql-transport-ws socket with nothing sent yet."""
    url = server.url.replace("http://", "ws://", 1) + "/graphql"
    return await connect(
        url,
        subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
        max_size=None,
        proxy=None,
        compression=None,
    )


async def close_code(socket: ClientConnection) -> int | None:
    """Read until the server closes the socket; its close code."""
    try:
        while True:
            await asyncio.wait_for(socket.recv(), 10)
    except ConnectionClosed:
        pass
    return socket.close_code


async def initialised(server: ServerThread, token: str | None) -> ClientConnection:
    socket = await raw_socket(server)
    payload = {"Authorization": f"Bearer {token}"} if token else {}
    await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
    assert json.loads(await asyncio.wait_for(socket.recv(), 10))["type"] == "connection_ack"
    return socket


def coded_errors(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The errors of an `error` or `next` message, each checked for a code and request id."""
    if message["type"] == "error":
        errors: list[dict[str, Any]] = message["payload"]
    else:
        assert message["type"] == "next", message
        errors = message["payload"]["errors"]
    for error in errors:
        assert error["extensions"]["code"], error
        assert error["extensions"]["request_id"], error
    return errors


@pytest.mark.parametrize(
    "payload",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": 42}],
    ids=["no-token", "bad-token", "not-a-string"],
)
async def test_connection_init_without_a_valid_token_is_refused(
    secured: ServerThread, payload: dict[str, Any]
) -> None:
    socket = await raw_socket(secured)
    await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
    assert await close_code(socket) == 4403
    assert socket.close_reason == "Forbidden"


async def test_connection_init_with_a_valid_token_is_acknowledged(
    secured: ServerThread, listener_token: str
) -> None:
    client = await GraphQLWebSocket.open(secured.url, listener_token)
    answer = await client.message(await client.subscribe("{ __typename }"))
    assert answer == {"id": "1", "type": "next", "payload": {"data": {"__typename": "Query"}}}
    await client.close()


async def test_anonymous_websocket_works_when_auth_is_off(gateway: ServerThread) -> None:
    client = await GraphQLWebSocket.open(gateway.url)
    answer = await client.message(await client.subscribe("{ __typename }"))
    assert answer["payload"] == {"data": {"__typename": "Query"}}
    await client.close()


async def test_every_message_is_a_text_frame(gateway: ServerThread) -> None:
    """graphql-transport-ws speaks JSON in text frames; clients such as gql refuse binary ones."""
    socket = await initialised(gateway, None)
    await socket.send(
        json.dumps({"id": "1", "type": "subscribe", "payload": {"query": "{ __typename }"}})
    )
    frames = [await asyncio.wait_for(socket.recv(), 10) for _ in range(2)]
    assert all(isinstance(frame, str) for frame in frames), frames
    assert [json.loads(frame)["type"] for frame in frames] == ["next", "complete"]
    await socket.close()


@pytest.fixture
async def any_server(redis_url: str, namespace: str) -> AsyncIterator[ServerThread]:
    """The app under uvicorn's own WebSocket defaults (16 MiB messages): the app must limit."""
    settings = gateway_settings(
        redis_url, namespace, auth={"secret": SECRET}, limits={"max_body_bytes": 65_536}
    )
    server = ServerThread(create_app(settings)).start()
    yield server
    server.stop()


async def test_message_over_the_body_limit_closes_the_socket_before_init(
    any_server: ServerThread,
) -> None:
    socket = await raw_socket(any_server)
    padding = "x" * 100_000
    await socket.send(json.dumps({"type": "connection_init", "payload": {"pad": padding}}))
    assert await close_code(socket) == 1009


async def test_message_over_the_body_limit_closes_an_authenticated_socket(
    any_server: ServerThread, listener_token: str
) -> None:
    socket = await initialised(any_server, listener_token)
    query = "{ __typename }" + " " * 100_000
    await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
    assert await close_code(socket) == 1009


async def test_validation_errors_carry_code_and_request_id(
    secured: ServerThread, listener_token: str
) -> None:
    client = await GraphQLWebSocket.open(secured.url, listener_token)
    errors = coded_errors(await client.message(await client.subscribe("{ no_such_field }")))
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "no_such_field" in errors[0]["message"]
    await client.close()


async def test_subscription_limit_error_is_coded(
    gateway_factory: Callable[..., ServerThread], listener_token: str
) -> None:
    server = gateway_factory(
        auth={"secret": SECRET}, limits={"max_subscriptions_per_connection": 1}
    )
    client = await GraphQLWebSocket.open(server.url, listener_token)
    await client.subscribe(LIVE)
    refused = await client.message(await client.subscribe(LIVE))
    assert refused["type"] == "error"
    errors = coded_errors(refused)
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "limit" in errors[0]["message"]
    await client.close()


async def test_syntax_error_is_an_error_message_without_a_logged_traceback(
    secured: ServerThread, listener_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    client = await GraphQLWebSocket.open(secured.url, listener_token)
    answer = await client.message(await client.subscribe("subscription { events_v1 { id "))
    assert answer["type"] == "error", answer
    errors = coded_errors(answer)
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "Syntax Error" in errors[0]["message"]
    still = await client.message(await client.subscribe("{ __typename }"))
    assert still["type"] == "next"
    await client.close()
    assert not [r for r in caplog.records if r.exc_info], caplog.text


@pytest.mark.parametrize(
    "message",
    [
        {"id": "1", "type": "subscribe"},
        {"id": "1", "type": "subscribe", "payload": {"query": 42}},
        {"id": "1", "type": "subscribe", "payload": {"query": "{ __typename }", "variables": 1}},
        {"id": 1, "type": "subscribe", "payload": {"query": "{ __typename }"}},
        {"type": "subscribe", "payload": {"query": "{ __typename }"}},
        {"id": "1" * 300, "type": "subscribe", "payload": {"query": "{ __typename }"}},
        ["subscribe"],
    ],
    ids=[
        "no-payload",
        "query-not-string",
        "variables-not-object",
        "id-not-string",
        "no-id",
        "id-too-long",
        "not-an-object",
    ],
)
async def test_malformed_subscribe_message_closes_4400(
    secured: ServerThread, listener_token: str, message: object
) -> None:
    socket = await initialised(secured, listener_token)
    await socket.send(json.dumps(message))
    assert await close_code(socket) == 4400


@pytest.mark.parametrize(
    "payload",
    [
        {"query": "query A { __typename }", "operationName": "B" * 10_000},
        {"query": "query A { __typename } query B { __typename }"},
    ],
    ids=["unknown-name", "several-operations-no-name"],
)
async def test_operation_choice_mistakes_are_coded_errors(
    secured: ServerThread, listener_token: str, payload: dict[str, Any]
) -> None:
    socket = await initialised(secured, listener_token)
    await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
    answer = json.loads(await asyncio.wait_for(socket.recv(), 10))
    assert answer["type"] == "error", answer
    errors = coded_errors(answer)
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert len(errors[0]["message"]) <= 1000
    await socket.close()


@pytest.mark.parametrize(
    "since",
    ["99999999999999999999999", "1-99999999999999999999999", "18446744073709551616-0", "١٢٣-0"],
)
async def test_since_outside_the_stream_id_range_is_bad_user_input(
    secured: ServerThread, listener_token: str, since: str
) -> None:
    client = await GraphQLWebSocket.open(secured.url, listener_token)
    errors = coded_errors(await client.message(await client.subscribe(LIVE, {"since": since})))
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT", errors
    await client.close()


async def test_largest_stream_id_is_accepted(secured: ServerThread, listener_token: str) -> None:
    client = await GraphQLWebSocket.open(secured.url, listener_token)
    operation = await client.subscribe(LIVE, {"since": "18446744073709551615-18446744073709551615"})
    with pytest.raises(AssertionError, match="no message"):
        await client.message(operation, timeout=1)
    await client.close()


async def test_serve_closes_an_oversize_message_with_1009(redis_url: str, namespace: str) -> None:
    settings = {
        "QONTRACT_GATEWAY_REDIS__URL": redis_url,
        "QONTRACT_GATEWAY_REDIS__NAMESPACE": namespace,
        "QONTRACT_GATEWAY_LIMITS__MAX_BODY_BYTES": "65536",
    }
    with serving(**settings) as (_, url):
        socket = await connect(
            url.replace("http://", "ws://", 1) + "/graphql",
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            max_size=None,
            proxy=None,
        )
        await socket.send(json.dumps({"type": "connection_init", "payload": {"p": "x" * 100_000}}))
        assert await close_code(socket) == 1009
