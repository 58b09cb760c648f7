"""Hostile GraphQL documents: validation costs time linear in the document, mistakes are coded."""

import gc
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from graphql import DocumentNode, ValidationRule, parse
from prometheus_client import CollectorRegistry
from strawberry.extensions import AddValidationRules

from gateway.metrics import GatewayMetrics
from gateway.settings import QueryLimits
from resolvers.systems import SYSTEMS
from schema import GatewaySchema, build_schema
from schema.document_form import validation_form
from tests.support.server_thread import ServerThread

SECRET = "test-secret-not-for-production-0123456789"


@pytest.fixture
def secured(gateway_factory: Callable[..., ServerThread]) -> ServerThread:
    """A gateway with auth on; every request below is anonymous."""
    return gateway_factory(auth={"secret": SECRET})


def post(server: ServerThread, body: dict[str, Any], timeout: float = 10) -> httpx.Response:
    return httpx.post(f"{server.url}/graphql", json=body, timeout=timeout)


def only_error(response: httpx.Response) -> dict[str, Any]:
    """The single error of a response, checked to carry a code and the request id."""
    body = response.json()
    assert body.get("data") is None, body
    assert len(body["errors"]) == 1, body
    error: dict[str, Any] = body["errors"][0]
    assert error["extensions"]["request_id"] == response.headers["x-request-id"]
    return error


def fragment_fan(levels: int, spreads: int = 3) -> str:
    """`levels` fragments, each spreading the one below `spreads` times: 3^levels paths."""
    fragments = ["fragment F0 on Query { __typename }"]
    for level in range(1, levels + 1):
        fan = " ".join(f"...F{level - 1}" for _ in range(spreads))
        fragments.append(f"fragment F{level} on Query {{ {fan} }}")
    return f"query Fan {{ ...F{levels} }}\n" + "\n".join(fragments)


def test_fragment_fan_out_is_answered_quickly_and_does_not_block_healthz(
    secured: ServerThread,
) -> None:
    assert post(secured, {"query": "{ __typename }"}).status_code == 200  # warm the connection
    document = {"query": fragment_fan(20)}
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(post, secured, document, 30)
        health = httpx.get(f"{secured.url}/healthz", timeout=5)
        assert health.status_code == 200
        response = pending.result()
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}
    fastest = min(_elapsed(secured, document) for _ in range(3))
    # 100 ms on a quiet machine; a loaded one slows every request alike, so the bound grows
    # with the same gateway's answer to a trivial query (3^20 validations would take hours)
    trivial = min(_elapsed(secured, {"query": "{ __typename }"}) for _ in range(3))
    assert fastest < 0.1 + 3 * trivial, f"3x20 took {fastest:.3f}s, a trivial query {trivial:.3f}s"


def _elapsed(server: ServerThread, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    assert post(server, body, 30).status_code == 200
    return time.perf_counter() - started


def test_depth_through_fragments_is_still_refused(
    gateway_factory: Callable[..., ServerThread],
) -> None:
    server = gateway_factory(auth={"secret": SECRET}, limits={"max_depth": 1})
    query = (
        "query Deep { ...Info } fragment Info on Query { gateway_info_v1 { ...Accounts } } "
        "fragment Accounts on GatewayInfo_v1 { upstream_accounts { name } }"
    )
    error = only_error(post(server, {"query": query}))
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] == "'Deep' exceeds maximum operation depth of 1"


def test_aliases_count_once_per_spread(gateway_factory: Callable[..., ServerThread]) -> None:
    server = gateway_factory(auth={"secret": SECRET}, limits={"max_aliases": 5})
    query = "{ ...Two ...Two ...Two } fragment Two on Query { a: __typename b: __typename }"
    error = only_error(post(server, {"query": query}))
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] == "6 aliases found. Allowed: 5"


def test_undefined_fragment_is_a_validation_error(secured: ServerThread) -> None:
    error = only_error(post(secured, {"query": "{ ...Missing }"}))
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] == "Unknown fragment 'Missing'."


@pytest.mark.parametrize(
    "query", ["{}", "query Q { gateway_info_v1 { } }", "{ ...E } fragment E on Query {}"]
)
def test_empty_selection_set_is_a_validation_error(secured: ServerThread, query: str) -> None:
    error = only_error(post(secured, {"query": query}))
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "at least one field" in error["message"]


def test_fragment_cycle_is_a_validation_error(secured: ServerThread) -> None:
    query = "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A __typename }"
    body = post(secured, {"query": query}).json()
    assert body.get("data") is None
    assert {e["extensions"]["code"] for e in body["errors"]} == {"BAD_USER_INPUT"}
    assert any("within itself" in e["message"] for e in body["errors"]), body


def test_subscription_over_post_is_a_coded_client_error(secured: ServerThread) -> None:
    response = post(secured, {"query": "subscription { events_v1 { id } }"})
    assert 400 <= response.status_code < 500
    error = only_error(response)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "subscriptions are not allowed" in error["message"]


def test_two_operations_without_operation_name_are_refused(secured: ServerThread) -> None:
    query = "query A { __typename } query B { __typename }"
    error = only_error(post(secured, {"query": query}))
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "operationName" in error["message"]


def test_operation_name_naming_no_operation_is_refused(secured: ServerThread) -> None:
    query = "query A { __typename }"
    error = only_error(post(secured, {"query": query, "operationName": "B"}))
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "Unknown operation named" in error["message"]


def test_named_operation_of_several_runs(secured: ServerThread) -> None:
    query = "query A { a: __typename } query B { b: __typename }"
    assert post(secured, {"query": query, "operationName": "B"}).json() == {"data": {"b": "Query"}}


@pytest.mark.parametrize(
    "body",
    [
        {"query": "query A { __typename }", "operationName": "B" * 300_000},
        {"query": "{ " + "x" * 300_000 + " }"},
        {"query": "{ ..." + "F" * 300_000 + " }"},
    ],
    ids=["operation-name", "field-name", "fragment-name"],
)
def test_long_names_are_not_echoed_in_full(secured: ServerThread, body: dict[str, Any]) -> None:
    response = post(secured, body)
    assert len(response.content) < 4096, response.content[:300]
    error = only_error(response)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_distinct_large_documents_are_not_kept_in_memory() -> None:
    schema = build_schema(QueryLimits(), GatewayMetrics(CollectorRegistry()), SYSTEMS)
    assert (await schema.execute("{ __typename }")).data == {"__typename": "Query"}
    gc.collect()
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    for index in range(20):
        padding = f"# {index} " + "x" * 200_000 + "\n"
        result = await schema.execute(padding + "{ __typename }")
        assert result.data == {"__typename": "Query"}
    del result
    gc.collect()
    retained, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert retained - before < 1_000_000, f"{retained - before} bytes kept after 20 x 200 kB"


async def test_repeated_documents_are_parsed_and_validated_once() -> None:
    schema = build_schema(QueryLimits(), GatewayMetrics(CollectorRegistry()), SYSTEMS)
    first = await schema.execute("{ no_such_field }")
    again = await schema.execute("{ no_such_field }")
    assert first.errors is not None
    assert again.errors is not None
    assert first.errors[0] is again.errors[0]


def counting_schema(validations: list[DocumentNode]) -> GatewaySchema:
    """The gateway schema with one more validation rule, which notes each validated document."""

    class NoteValidation(ValidationRule):
        def enter_document(self, node: DocumentNode, *_: Any) -> None:
            validations.append(node)

    extra = [lambda: AddValidationRules([NoteValidation])]
    return build_schema(QueryLimits(), GatewayMetrics(CollectorRegistry()), SYSTEMS, extra)


async def test_a_document_new_only_in_layout_and_aliases_is_not_validated_again() -> None:
    validations: list[DocumentNode] = []
    schema = counting_schema(validations)
    first = await schema.execute("query Q { a: __typename b: __typename }")
    second = await schema.execute(
        "query Q {\n  # another caller\n  x: __typename, y: __typename\n}"
    )
    assert first.data == {"a": "Query", "b": "Query"}
    assert second.data == {"x": "Query", "y": "Query"}
    assert len(validations) == 1


async def test_aliases_that_now_name_one_response_field_are_validated_and_named() -> None:
    validations: list[DocumentNode] = []
    schema = counting_schema(validations)
    await schema.execute("{ a: __typename b: gateway_info_v1 { version } }")
    result = await schema.execute("{ c: __typename c: gateway_info_v1 { version } }")
    assert len(validations) == 2
    assert result.errors is not None
    assert "'c'" in result.errors[0].message


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("{ a: x b: y }", "{ a: x a: y }"),  # two response names, then one
        ("{ x }", "{ a: x }"),  # an alias counts towards limits.max_aliases
        ("{ y: x y }", "{ z: x y }"),  # `y: x` collides with the field `y`, `z: x` does not
        ('{ x(s: "A") }', "{ x(s: A) }"),  # a string, then an enum value
    ],
)
def test_documents_that_validate_differently_have_different_forms(first: str, second: str) -> None:
    assert validation_form(parse(first)) != validation_form(parse(second))


def test_layout_comments_and_free_alias_names_do_not_change_the_form() -> None:
    first = 'query Q($id: ID!) { a: x(id: $id, s: """t""") { b: y ...F } } fragment F on T { z }'
    second = 'query Q( $id :ID! ){#c\n k:x(id:$id s:"t"){l:y,...F}}\nfragment F on T{z}'
    assert validation_form(parse(first)) == validation_form(parse(second))
