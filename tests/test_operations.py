"""Health, readiness, metrics and request ids as an operator sees them."""

from collections.abc import Callable

import httpx

from tests.support.server_thread import ServerThread


def test_healthz_and_readyz_answer_200_with_redis_up(gateway: ServerThread) -> None:
    assert httpx.get(f"{gateway.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{gateway.url}/readyz").json() == {"status": "ready"}


def test_request_id_is_taken_from_the_caller_and_echoed(gateway: ServerThread) -> None:
    response = httpx.post(
        f"{gateway.url}/graphql",
        json={"query": "{ nope }"},
        headers={"x-request-id": "build-1234.step-5"},
    )
    assert response.headers["x-request-id"] == "build-1234.step-5"
    assert response.json()["errors"][0]["extensions"]["request_id"] == "build-1234.step-5"


def test_unsafe_request_id_is_replaced(gateway: ServerThread) -> None:
    response = httpx.get(f"{gateway.url}/healthz", headers={"x-request-id": "bad id\twith tabs"})
    assert response.headers["x-request-id"] != "bad id\twith tabs"
    assert len(response.headers["x-request-id"]) == 32


def test_metrics_count_operations_by_name_type_outcome_and_errors_by_code(
    gateway_factory: Callable[..., ServerThread],
) -> None:
    gateway = gateway_factory(metrics={"operation_names": ["Info"]})
    ok = {"query": "query Info { gateway_info_v1 { version } }", "operationName": "Info"}
    httpx.post(f"{gateway.url}/graphql", json=ok)
    httpx.post(f"{gateway.url}/graphql", json={"query": "{ nope }"})
    text = httpx.get(f"{gateway.url}/metrics").text
    assert (
        'qontract_gateway_graphql_operations_total{operation="Info",outcome="ok",type="query"} 1.0'
        in text
    )
    assert 'qontract_gateway_graphql_errors_total{code="BAD_USER_INPUT"} 1.0' in text
    assert 'qontract_gateway_graphql_operation_seconds_count{outcome="ok",type="query"} 1.0' in text
    assert (
        'qontract_gateway_http_requests_total{method="POST",route="/graphql",status="200"} 2.0'
        in text
    )
