"""Malformed HTTP requests get a 4xx with the JSON error shape, never a 500 or a traceback."""

import gzip
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.server_log import server_errors
from tests.support.server_thread import ServerThread

SECRET = "test-secret-not-for-production-0123456789"
INFO = "{ gateway_info_v1 { version } }"
DEEP = 100_000


@pytest.fixture
def secured(gateway_factory: Callable[..., ServerThread]) -> Iterator[ServerThread]:
    """A gateway with auth on, as attacked; fails the test if the server logs an error."""
    server = gateway_factory(auth={"secret": SECRET})
    with server_errors() as errors:
        yield server
    assert errors == [], [record.getMessage() for record in errors]


def assert_refused(response: httpx.Response, status: int) -> dict[str, Any]:
    """`status`, a JSON body with one coded error carrying the response's request id."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["request_id"] == response.headers["x-request-id"]
    return dict(error)


def post(server: ServerThread, content: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/graphql",
        content=content,
        headers={"content-type": "application/json", **headers},
        timeout=30,
    )


@pytest.mark.parametrize("body", ['"x"', "null", "1", "[]", "true", f'[{{"query": "{INFO}"}}]'])
def test_json_that_is_not_an_object_is_a_400(secured: ServerThread, body: str) -> None:
    error = assert_refused(post(secured, body.encode()), 400)
    assert "JSON object" in error["message"]


def test_arrays_nested_a_hundred_thousand_deep_are_a_400(secured: ServerThread) -> None:
    assert_refused(post(secured, b"[" * DEEP + b"]" * DEEP), 400)


def test_variables_nested_a_hundred_thousand_deep_are_a_400(secured: ServerThread) -> None:
    nested = b"[" * DEEP + b"]" * DEEP
    body = b'{"query": "query Q($v: JSON) { gateway_info_v1 { version } }", "variables": {"v": '
    error = assert_refused(post(secured, body + nested + b"}}"), 400)
    assert "nested" in error["message"]


def test_invalid_utf8_is_a_400(secured: ServerThread) -> None:
    error = assert_refused(post(secured, b'{"query": "{ gateway_info_v1 \xff\xfe }"}'), 400)
    assert "UTF-8" in error["message"]


def test_a_number_with_a_million_digits_is_a_400(secured: ServerThread) -> None:
    body = b'{"query": "' + INFO.encode() + b'", "variables": {"n": ' + b"9" * 100_000 + b"}}"
    assert_refused(post(secured, body), 400)


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, gzip", "x-gzip"])
def test_encodings_other_than_gzip_and_deflate_are_a_415(
    secured: ServerThread, encoding: str
) -> None:
    content = gzip.compress(json.dumps({"query": INFO}).encode())
    error = assert_refused(post(secured, content, **{"content-encoding": encoding}), 415)
    assert "Content-Encoding" in error["message"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("query", 1),
        ("query", {"a": 1}),
        ("query", ["{ gateway_info_v1 { version } }"]),
        ("variables", [1]),
        ("variables", "x"),
        ("variables", 1),
        ("operationName", 5),
        ("operationName", ["a"]),
        ("extensions", "x"),
    ],
)
def test_fields_of_the_wrong_type_are_a_400_naming_the_field(
    secured: ServerThread, field: str, value: object
) -> None:
    body = {"query": INFO, field: value}
    error = assert_refused(post(secured, json.dumps(body).encode()), 400)
    assert f"`{field}`" in error["message"]


def test_a_lone_surrogate_in_the_query_is_answered_in_json(secured: ServerThread) -> None:
    response = post(secured, b'{"query": "{ gateway_info_v1 { version } } # \\ud800"}')
    assert response.status_code in (200, 400)
    assert response.json()["errors"][0]["extensions"]["code"] in (
        "UNAUTHENTICATED",
        "BAD_USER_INPUT",
    )


@pytest.mark.parametrize(
    "params",
    [
        {"query": INFO, "variables": "not json"},
        {"query": INFO, "variables": "[1]"},
        {"query": INFO, "variables": "[" * 5_000 + "]" * 5_000},
        {"query": INFO, "variables": "9" * 5_000},
        {"query": INFO, "extensions": "1"},
        {"variables": "{}"},
    ],
)
def test_get_with_broken_parameters_is_a_400(secured: ServerThread, params: dict[str, str]) -> None:
    response = httpx.get(
        f"{secured.url}/graphql",
        params=params,
        headers={"accept": "application/json"},
        timeout=30,
    )
    assert_refused(response, 400)


def test_get_with_invalid_utf8_in_variables_is_a_400(secured: ServerThread) -> None:
    response = httpx.get(f"{secured.url}/graphql?query=%7B%7D&variables=%7B%22a%22%3A%22%FF%22%7D")
    assert response.status_code in (200, 400)
    assert "errors" in response.json()


def test_a_well_formed_request_still_works(secured: ServerThread) -> None:
    response = post(secured, json.dumps({"query": INFO, "variables": None}).encode())
    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
