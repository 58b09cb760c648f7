"""Start the real gateway app under uvicorn for a test."""

from typing import Any

import httpx

from gateway.app import create_app
from gateway.http_protocol import bounded_http_protocol
from gateway.settings import Settings
from tests.support.server_thread import ServerThread


def gateway_settings(redis_url: str, namespace: str, **overrides: Any) -> Settings:
    """Settings for a test gateway on `redis_url`, keys under `namespace`."""
    redis = {"url": redis_url, "namespace": namespace, **overrides.pop("redis", {})}
    return Settings(redis=redis, **overrides)


def start_gateway(settings: Settings) -> ServerThread:
    """A running gateway for `settings` on a free port, under `serve`'s HTTP protocol and sizes."""
    return ServerThread(
        create_app(settings),
        http=bounded_http_protocol(settings.http),
        ws_max_size=settings.limits.max_body_bytes,
    ).start()


def graphql(
    server: ServerThread, document: str, token: str | None = None, **variables: Any
) -> dict[str, Any]:
    """POST `document` with `variables` (and a bearer `token`) to `server`; the JSON body."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(
        f"{server.url}/graphql",
        json={"query": document, "variables": variables},
        headers=headers,
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
