"""The app factory: the only place that assembles runtime, schema, routes and middleware."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

from gateway.graphiql import ASSETS_URL, AssetFiles, offline_graphiql_html
from gateway.graphiql.assets import ASSETS_DIR
from gateway.graphql_view import GatewayGraphQL
from gateway.health import HealthEndpoints
from gateway.middleware import (
    BodyLimitMiddleware,
    HttpMetricsMiddleware,
    RequestIdMiddleware,
    WebSocketMessageLimitMiddleware,
)
from gateway.runtime import Runtime
from gateway.settings import Settings, load_settings
from gateway.tasks.queue import TaskQueue
from resolvers import Sources
from schema import build_schema
from schema.context import RequestContext


def create_app(settings: Settings, graphiql_assets: Path = ASSETS_DIR) -> Starlette:
    """A Starlette app serving GraphQL, GraphiQL (files from `graphiql_assets`), health, metrics."""
    runtime = Runtime.create(settings)
    sources = Sources.create(runtime)
    tasks = TaskQueue.create(runtime)
    schema = build_schema(settings.limits, runtime.metrics)

    def make_context(
        request: Request | WebSocket, request_id: str, authorization: str | None
    ) -> RequestContext:
        return RequestContext(runtime, sources, tasks, request, request_id, authorization)

    graphql = GatewayGraphQL(schema, runtime, make_context, offline_graphiql_html(graphiql_assets))
    health = HealthEndpoints(runtime)
    path = settings.graphql_path
    routes: list[BaseRoute] = [
        Route(path, graphql, methods=["GET", "POST"]),
        WebSocketRoute(path, graphql),
        Route("/healthz", health.healthz),
        Route("/readyz", health.readyz),
        Route("/metrics", health.metrics),
        Mount(ASSETS_URL.rstrip("/"), AssetFiles(graphiql_assets)),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        await sources.start()
        gc.collect()
        gc.freeze()
        await tasks.start()
        yield
        await tasks.aclose()
        await sources.aclose()
        await runtime.aclose()

    known = frozenset({path, "/healthz", "/readyz", "/metrics"})
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(HttpMetricsMiddleware, metrics=runtime.metrics, routes=known),
            Middleware(
                BodyLimitMiddleware,
                max_bytes=settings.limits.max_body_bytes,
                read_timeout=settings.http.body_timeout,
            ),
            Middleware(WebSocketMessageLimitMiddleware, max_bytes=settings.limits.max_body_bytes),
        ],
        lifespan=lifespan,
    )


def app_from_environment() -> Starlette:
    """uvicorn factory for `serve`: settings from the config file and environment."""
    return create_app(load_settings())
