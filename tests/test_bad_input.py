"""Every malformed request gets a clear, coded error and never a 500."""

from collections.abc import Callable

import httpx
import pytest

from tests.support.server_thread import ServerThread

INFO = "{ gateway_info_v1 { version } }"


def graphql(server: ServerThread, **kwargs: object) -> httpx.Response:
    return httpx.post(f"{server.url}/graphql", timeout=10, **kwargs)  # type: ignore[arg-type]


def only_error(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert len(body["errors"]) == 1, body
    error: dict[str, object] = body["errors"][0]
    assert error["extensions"]["request_id"] == response.headers["x-request-id"]  # type: ignore[index]
    return error


def code(response: httpx.Response) -> str:
    return str(only_error(response)["extensions"]["code"])  # type: ignore[index]


def test_malformed_json_is_a_400_with_bad_user_input(gateway: ServerThread) -> None:
    response = graphql(gateway, content='{"query": ', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert code(response) == "BAD_USER_INPUT"
    assert "JSON" in str(only_error(response)["message"])


def test_syntax_error_names_the_problem(gateway: ServerThread) -> None:
    response = graphql(gateway, json={"query": "{ gateway_info_v1 { version "})
    assert response.status_code == 200
    assert code(response) == "BAD_USER_INPUT"
    assert "Syntax Error" in str(only_error(response)["message"])


def test_unknown_field_is_refused_by_name(gateway: ServerThread) -> None:
    response = graphql(gateway, json={"query": "{ gateway_info_v1 { no_such_field } }"})
    assert code(response) == "BAD_USER_INPUT"
    assert "no_such_field" in str(only_error(response)["message"])


def test_query_fifty_levels_deep_is_refused(gateway: ServerThread) -> None:
    deep = '{ __type(name: "Query") { ' + "fields { type { " * 25 + "name" + " } }" * 25 + " } }"
    response = graphql(gateway, json={"query": deep})
    assert response.status_code == 200
    assert code(response) == "BAD_USER_INPUT"
    assert "depth" in str(only_error(response)["message"])


def test_depth_limit_applies_to_data_fields(
    gateway_factory: Callable[..., ServerThread],
) -> None:
    server = gateway_factory(limits={"max_depth": 1})
    response = graphql(server, json={"query": "{ gateway_info_v1 { upstream_accounts { name } } }"})
    assert code(response) == "BAD_USER_INPUT"
    assert "exceeds maximum operation depth" in str(only_error(response)["message"])


def test_hundred_aliases_are_refused(gateway: ServerThread) -> None:
    query = "{ " + " ".join(f"a{i}: gateway_info_v1 {{ version }}" for i in range(100)) + " }"
    response = graphql(gateway, json={"query": query})
    assert code(response) == "BAD_USER_INPUT"
    assert "100 aliases" in str(only_error(response)["message"])


def test_too_many_tokens_are_refused(gateway_factory: Callable[..., ServerThread]) -> None:
    server = gateway_factory(limits={"max_tokens": 50})
    query = "{ " + " ".join("gateway_info_v1 { version }" for _ in range(20)) + " }"
    response = graphql(server, json={"query": query})
    assert code(response) == "BAD_USER_INPUT"
    assert "more than 50 tokens" in str(only_error(response)["message"])


def test_five_megabyte_body_is_a_413(gateway: ServerThread) -> None:
    padding = "#" + "x" * (5 * 1024 * 1024) + "\n"
    response = graphql(gateway, json={"query": padding + INFO})
    assert response.status_code == 413
    assert code(response) == "BAD_USER_INPUT"


def test_streamed_body_without_length_over_the_limit_is_a_413(gateway: ServerThread) -> None:
    def chunks() -> object:
        for _ in range(6):
            yield b" " * (1024 * 1024)

    response = graphql(gateway, content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_mutation_over_get_is_refused(gateway: ServerThread) -> None:
    response = httpx.get(
        f"{gateway.url}/graphql", params={"query": "mutation { cache_invalidate_v1 }"}, timeout=10
    )
    assert response.status_code in (400, 405)
    assert code(response) == "BAD_USER_INPUT"
    assert "GET" in str(only_error(response)["message"])


def test_query_over_get_works(gateway: ServerThread) -> None:
    response = httpx.get(f"{gateway.url}/graphql", params={"query": INFO}, timeout=10)
    assert response.status_code == 200
    assert response.json()["data"]["gateway_info_v1"]["version"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml"])
def test_wrong_content_type_is_refused(gateway: ServerThread, content_type: str) -> None:
    response = graphql(gateway, content=INFO, headers={"content-type": content_type})
    assert 400 <= response.status_code < 500
    assert code(response) == "BAD_USER_INPUT"
