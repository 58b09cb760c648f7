"""Slow or oversize requests are cut: header and body deadlines, a header size bound (real sockets).

The deadlines are set to a second or two; every bound asserted is generous (the deadline plus
several seconds), so a loaded machine does not flake, while a connection held open for ever fails.
"""

import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.serve_process import serving
from tests.support.server_thread import ServerThread
from tests.support.wait import wait_until

SECRET = "test-secret-not-for-production-0123456789"
SLACK = 6.0  # seconds past a deadline a loaded machine may take to close the connection
DRIBBLE_INTERVAL = 0.25


def open_connection(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=DRIBBLE_INTERVAL)


def read_until_closed(connection: socket.socket, limit: float, dribble: bytes = b"") -> bytes:
    """Everything the server sends until it closes; one byte of `dribble` per interval meanwhile.

    Fails when the connection is still open after `limit` seconds.
    """
    received = b""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if dribble:
            try:
                connection.sendall(dribble[:1])
            except OSError:  # closed by the server while we were still sending
                dribble = b""
            dribble = dribble[1:]
        try:
            chunk = connection.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"connection still open after {limit} s; received {received[:200]!r}")


def status_and_error(response: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    (error,) = json.loads(body)["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["request_id"]
    return status, error


def post_head(length: int, path: str = "/graphql") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"content-length: {length}\r\n\r\n"
    ).encode()


@pytest.fixture
def strict(gateway_factory: Callable[..., ServerThread]) -> ServerThread:
    """A gateway with auth on and one-second header and two-second body deadlines."""
    return gateway_factory(
        auth={"secret": SECRET}, http={"header_timeout": 1.0, "body_timeout": 2.0}
    )


def test_a_body_sent_one_byte_per_second_is_cut_with_a_408(strict: ServerThread) -> None:
    connection = open_connection(strict.url)
    connection.sendall(post_head(1_000))
    started = time.monotonic()
    response = read_until_closed(connection, 2.0 + SLACK, dribble=b"x" * 1_000)
    assert time.monotonic() - started < 2.0 + SLACK
    status, error = status_and_error(response)
    assert status == 408
    assert "body not received within 2 s" in error["message"]


def test_a_slow_body_the_app_does_not_read_does_not_hold_the_connection(
    strict: ServerThread,
) -> None:
    connection = open_connection(strict.url)
    connection.sendall(post_head(1_000, path="/healthz"))
    response = read_until_closed(connection, 2.0 + SLACK, dribble=b"x" * 1_000)
    assert response.startswith(b"HTTP/1.1 405")


def test_many_connections_dribbling_headers_or_idle_are_all_closed(strict: ServerThread) -> None:
    connections = [open_connection(strict.url) for _ in range(50)]
    for connection in connections[::2]:
        connection.sendall(b"GET /healthz HTTP/1.1\r\n")
    started = time.monotonic()
    for n, connection in enumerate(connections):
        dribble = b"x-slow: " + b"a" * 100 if n % 2 == 0 else b""
        response = read_until_closed(connection, 1.0 + SLACK, dribble=dribble)
        assert response == b"" or status_and_error(response)[0] == 408
    assert time.monotonic() - started < 1.0 + SLACK
    assert httpx.get(f"{strict.url}/healthz", timeout=10).status_code == 200


def test_a_keep_alive_connection_dribbling_its_next_request_is_closed(
    strict: ServerThread,
) -> None:
    connection = open_connection(strict.url)
    connection.sendall(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
    wait_until(lambda: b'{"status":"ok"}' in connection.recv(65536), 10, "the first answer")
    response = read_until_closed(connection, 1.0 + SLACK, dribble=b"GET /healthz HTTP/1.1\r\n")
    assert status_and_error(response)[0] == 408


def test_an_oversize_header_sent_at_once_is_a_431(strict: ServerThread) -> None:
    connection = open_connection(strict.url)
    cookie = b"c" * 40_000
    connection.sendall(
        b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\ncookie: " + cookie + b"\r\n\r\n"
    )
    status, error = status_and_error(read_until_closed(connection, SLACK))
    assert status == 431
    assert "32768 bytes" in error["message"]


def test_an_endless_header_is_cut_at_the_limit(strict: ServerThread) -> None:
    connection = open_connection(strict.url)
    connection.settimeout(SLACK)
    connection.sendall(b"GET /healthz HTTP/1.1\r\nx-endless: ")
    sent = 0
    try:  # the kernel buffers a few megabytes before the server's close reaches us
        while sent < 20_000_000:
            connection.sendall(b"a" * 16_384)
            sent += 16_384
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert sent < 20_000_000, "the server read 20 MB of one header"
    connection.settimeout(DRIBBLE_INTERVAL)
    response = read_until_closed(connection, SLACK)
    assert response == b"" or status_and_error(response)[0] == 431


def test_a_header_block_within_the_limit_is_served(strict: ServerThread) -> None:
    response = httpx.get(f"{strict.url}/healthz", headers={"cookie": "c" * 20_000}, timeout=10)
    assert response.status_code == 200


@pytest.fixture
def served() -> Iterator[str]:
    """`qontract-gateway serve` with one-second header and body deadlines; its base URL."""
    with serving(
        QONTRACT_GATEWAY_HTTP__HEADER_TIMEOUT="1",
        QONTRACT_GATEWAY_HTTP__BODY_TIMEOUT="1",
        QONTRACT_GATEWAY_HTTP__MAX_HEADER_BYTES="8192",
    ) as (_, url):
        yield url


def test_serve_cuts_slow_headers_slow_bodies_and_oversize_headers(served: str) -> None:
    dribblers = [open_connection(served) for _ in range(20)]
    for connection in dribblers:
        connection.sendall(b"GET /healthz HTTP/1.1\r\n")
    body = open_connection(served)
    body.sendall(post_head(1_000))

    for connection in dribblers:
        response = read_until_closed(connection, 1.0 + SLACK, dribble=b"x-slow: " + b"a" * 100)
        assert response == b"" or status_and_error(response)[0] == 408
    assert status_and_error(read_until_closed(body, 1.0 + SLACK, dribble=b"x" * 1_000))[0] == 408

    oversize = httpx.get(f"{served}/healthz", headers={"cookie": "c" * 10_000}, timeout=10)
    assert oversize.status_code == 431
    assert oversize.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert httpx.get(f"{served}/healthz", timeout=10).status_code == 200
