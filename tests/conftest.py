"""Session-wide real parts: a private Redis (or REDIS_URL), and a fresh key namespace per test."""

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.support.redis_server import PrivateRedis


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
