"""Start the real gateway app under uvicorn for a test."""

from typing import Any

from gateway.app import create_app
from gateway.settings import Settings
from tests.support.server_thread import ServerThread


def gateway_settings(redis_url: str, namespace: str, **overrides: Any) -> Settings:
    """Settings for a test gateway on `redis_url`, keys under `namespace`."""
    redis = {"url": redis_url, "namespace": namespace, **overrides.pop("redis", {})}
    return Settings(redis=redis, **overrides)


def start_gateway(settings: Settings) -> ServerThread:
    """A running gateway for `settings` on a free port; stop() it when done."""
    return ServerThread(create_app(settings)).start()
