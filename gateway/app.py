"""The app factory: the only place that assembles runtime, schema, routes and middleware."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from gateway.auth import TokenVerifier
from gateway.graphiql import ASSETS_URL, offline_graphiql_html
from gateway.graphiql.assets import ASSETS_DIR
from gateway.graphql_view import GatewayGraphQL
from gateway.health import HealthEndpoints
from gateway.metrics import GatewayMetrics
from gateway.middleware import BodyLimitMiddleware, HttpMetricsMiddleware, RequestIdMiddleware
from gateway.redis import create_redis
from gateway.runtime import Runtime
from gateway.settings import Settings, load_settings
from schema import build_schema


def create_runtime(settings: Settings) -> Runtime:
    """The long-lived parts of one app: Redis client, metrics registry, token verifier."""
    if settings.redis.url is None:
        raise ValueError("create_app needs a Redis URL; `qontract-gateway serve` starts one")
    secret = settings.auth.secret.get_secret_value() if settings.auth.secret else None
    return Runtime(
        settings=settings,
        redis=create_redis(
            settings.redis.url,
            socket_timeout=settings.redis.socket_timeout,
            connect_timeout=settings.redis.connect_timeout,
        ),
        metrics=GatewayMetrics(CollectorRegistry()),
        verifier=TokenVerifier(secret, settings.auth.revoked_subjects),
    )


def create_app(settings: Settings) -> Starlette:
    """A Starlette app serving GraphQL, GraphiQL, health and metrics for `settings`."""
    runtime = create_runtime(settings)
    schema = build_schema(settings.limits, runtime.metrics)
    graphql = GatewayGraphQL(schema, runtime, graphiql_html=offline_graphiql_html())
    health = HealthEndpoints(runtime)
    path = settings.graphql_path
    routes: list[BaseRoute] = [
        Route(path, graphql, methods=["GET", "POST"]),
        WebSocketRoute(path, graphql),
        Route("/healthz", health.healthz),
        Route("/readyz", health.readyz),
        Route("/metrics", health.metrics),
        Mount(ASSETS_URL.rstrip("/"), StaticFiles(directory=ASSETS_DIR, check_dir=False)),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        gc.collect()
        gc.freeze()
        yield
        await runtime.redis.aclose()

    known = frozenset({path, "/healthz", "/readyz", "/metrics"})
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(HttpMetricsMiddleware, metrics=runtime.metrics, routes=known),
            Middleware(BodyLimitMiddleware, max_bytes=settings.limits.max_body_bytes),
        ],
        lifespan=lifespan,
    )


def app_from_environment() -> Starlette:
    """uvicorn factory for `serve`: settings from the config file and environment."""
    return create_app(load_settings())
