"""The client sends large request bodies gzip-compressed, and the gateway serves them."""

import gzip
import json
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from reconcile_client.config import GatewayEndpoint
from reconcile_client.gateway_client import GatewayClient
from tests.support.server_thread import ServerThread

MIN_BYTES = 4096
QUERY = "query GatewayInfo { gateway_info_v1 { version } }"
PADDING = {"padding": "padding " * 25_000}  # 200 kB, as a large desired state would be


class RecordingEndpoint:
    """A GraphQL endpoint that keeps each request's headers and body as they arrived."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.app = Starlette(routes=[Route("/graphql", self.answer, methods=["POST"])])

    async def answer(self, request: Request) -> JSONResponse:
        self.requests.append((dict(request.headers), await request.body()))
        return JSONResponse({"data": {"gateway_info_v1": {"version": "recorded"}}})


@pytest.fixture
def recording() -> Iterator[tuple[RecordingEndpoint, ServerThread]]:
    endpoint = RecordingEndpoint()
    with ServerThread(endpoint.app) as server:
        yield endpoint, server


async def ask(url: str, variables: dict[str, str] | None = None) -> dict[str, object]:
    """GatewayInfo, with `variables` beside it (undeclared ones are ignored by GraphQL)."""
    client = GatewayClient(GatewayEndpoint(url=url), compress_min_bytes=MIN_BYTES)
    try:
        return await client.execute_document(QUERY, variables)
    finally:
        await client.aclose()


async def test_bodies_from_the_threshold_on_are_sent_gzip_and_smaller_ones_plain(
    recording: tuple[RecordingEndpoint, ServerThread],
) -> None:
    endpoint, server = recording
    await ask(f"{server.url}/graphql")
    await ask(f"{server.url}/graphql", PADDING)
    (small_headers, small_body), (large_headers, large_body) = endpoint.requests
    assert "content-encoding" not in small_headers
    assert "GatewayInfo" in json.loads(small_body)["query"]
    assert large_headers["content-encoding"] == "gzip"
    assert int(large_headers["content-length"]) == len(large_body) < 10_000
    assert json.loads(gzip.decompress(large_body))["variables"] == PADDING


async def test_the_gateway_answers_a_compressed_request_as_the_plain_one(
    gateway: ServerThread,
) -> None:
    large = await ask(f"{gateway.url}/graphql", PADDING)
    assert large == await ask(f"{gateway.url}/graphql")
    assert large["gateway_info_v1"]
