"""The gateway answers its first field over real HTTP with a real Redis."""

from collections.abc import Callable

import httpx

from tests.support.server_thread import ServerThread


def test_gateway_info_reports_version_redis_mode_and_redis_version(gateway: ServerThread) -> None:
    response = httpx.post(
        f"{gateway.url}/graphql",
        json={
            "query": "{ gateway_info_v1 { version redis_mode redis_version "
            "upstream_accounts { name } } }"
        },
    )
    assert response.status_code == 200
    info = response.json()["data"]["gateway_info_v1"]
    assert info["redis_mode"] == "external"
    assert info["redis_version"][0].isdigit()
    assert info["upstream_accounts"] == []
    assert response.headers["x-request-id"]


def test_federation_service_sdl_is_served_for_composition(gateway: ServerThread) -> None:
    response = httpx.post(f"{gateway.url}/graphql", json={"query": "{ _service { sdl } }"})
    sdl = response.json()["data"]["_service"]["sdl"]
    assert "gateway_info_v1: GatewayInfo_v1!" in sdl


def test_checked_in_schema_matches_the_code() -> None:
    from pathlib import Path

    from prometheus_client import CollectorRegistry

    from gateway.metrics import GatewayMetrics
    from gateway.settings import QueryLimits
    from resolvers.systems import SYSTEMS
    from schema import build_schema, export_sdl

    built = export_sdl(build_schema(QueryLimits(), GatewayMetrics(CollectorRegistry()), SYSTEMS))
    checked_in = (Path(__file__).parents[1] / "schema" / "schema.graphql").read_text()
    assert built == checked_in, (
        "run `qontract-gateway export-schema --output schema/schema.graphql`"
    )


def test_introspection_can_be_turned_off(gateway_factory: Callable[..., ServerThread]) -> None:
    server = gateway_factory(limits={"introspection": False})
    response = httpx.post(
        f"{server.url}/graphql", json={"query": "{ __schema { types { name } } }"}
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "introspection" in response.json()["errors"][0]["message"]
