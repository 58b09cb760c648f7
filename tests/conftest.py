"""Session-wide real parts: a private Redis (or REDIS_URL), GraphiQL assets, a key namespace."""

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.graphiql.assets import ASSETS_DIR, fetch_assets, invalid_assets
from tests.support.chromium import REQUIRE_BROWSER_VARIABLE
from tests.support.gateway import gateway_settings, start_gateway
from tests.support.redis_server import PrivateRedis
from tests.support.required import skip_unless_required
from tests.support.server_thread import ServerThread


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis for the whole session: REDIS_URL when set (never flushed), else a private server."""
    external = os.environ.get("REDIS_URL")
    if external:
        yield external
        return
    with PrivateRedis() as server:
        yield server.url


@pytest.fixture
def namespace() -> str:
    """A key namespace no other test uses, so tests never see each other's keys."""
    return f"qgwtest-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def gateway_factory(redis_url: str, namespace: str) -> Iterator[Callable[..., ServerThread]]:
    """Start gateways (`factory(**settings)`) that share this test's Redis and namespace."""
    started: list[ServerThread] = []

    def factory(**overrides: Any) -> ServerThread:
        server = start_gateway(gateway_settings(redis_url, namespace, **overrides))
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture
def gateway(gateway_factory: Callable[..., ServerThread]) -> ServerThread:
    """One gateway on the embedded-style defaults (no auth, loopback) with the test's Redis."""
    return gateway_factory()


@pytest.fixture(scope="session")
def graphiql_assets() -> Path:
    """The GraphiQL files in the directory the gateway serves, fetched with npm when missing."""
    if invalid_assets(ASSETS_DIR) and shutil.which("npm") is None:
        skip_unless_required(
            "npm is not installed; it is needed to fetch the GraphiQL assets",
            REQUIRE_BROWSER_VARIABLE,
        )
    fetch_assets(ASSETS_DIR)
    return ASSETS_DIR
