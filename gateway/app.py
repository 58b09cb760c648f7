"""The app factory: the only place that assembles runtime, schema, routes and middleware."""

import gc
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp
from starlette.websockets import WebSocket

from gateway.federation.http import FederatedEndpoint
from gateway.federation.service import Federation
from gateway.graphiql import ASSETS_URL, AssetFiles, offline_graphiql_html
from gateway.graphiql.assets import ASSETS_DIR
from gateway.graphql_view import GatewayGraphQL, request_id_of
from gateway.health import HealthEndpoints
from gateway.middleware import (
    BodyLimitMiddleware,
    HttpMetricsMiddleware,
    RequestIdMiddleware,
    WebSocketMessageLimitMiddleware,
)
from gateway.registry import SINGLE_ACCOUNT, AnySystem, Sources
from gateway.runtime import Runtime
from gateway.settings import Settings, load_settings
from gateway.tasks.queue import TaskQueue
from resolvers.qontract_server.source import QontractServerSource
from resolvers.systems import SYSTEMS
from schema import build_schema
from schema.app_interface import APP_INTERFACE_SCOPE, build_federation, limit_rules
from schema.context import RequestContext


def create_app(
    settings: Settings,
    graphiql_assets: Path = ASSETS_DIR,
    systems: Sequence[AnySystem] = SYSTEMS,
) -> Starlette:
    """A Starlette app of `systems` serving GraphQL, GraphiQL (files from `graphiql_assets`),
    health and metrics; one set of sources serves the API and (role `all`) the task kinds."""
    runtime = Runtime.create(settings)
    sources = Sources.create(runtime, systems)
    kinds = sources.task_kinds(runtime) if settings.role == "all" else None
    tasks = TaskQueue.create(runtime, kinds)
    schema = build_schema(settings.limits, runtime.metrics, systems)

    def make_context(
        request: Request | WebSocket, request_id: str, authorization: str | None
    ) -> RequestContext:
        return RequestContext(runtime, sources, tasks, request, request_id, authorization)

    graphql = GatewayGraphQL(schema, runtime, make_context, offline_graphiql_html(graphiql_assets))
    endpoint: ASGIApp = graphql
    federation_routes: list[BaseRoute] = []
    federation: Federation | None = None
    qontract_server = sources.of(QontractServerSource).get(SINGLE_ACCOUNT)
    if qontract_server is not None:
        federation, federated = build_federation(
            settings.limits,
            runtime.metrics,
            systems,
            qontract_server,
            qontract_server.settings.poll_interval,
        )
        federated_endpoint = FederatedEndpoint(
            federation,
            graphql,
            GatewayGraphQL(
                federated, runtime, make_context, offline_graphiql_html(graphiql_assets)
            ),
            frozenset(schema._schema.query_type.fields),  # type: ignore[union-attr]
            runtime.verifier,
            APP_INTERFACE_SCOPE,
            limit_rules(federated),
            settings.limits.max_tokens,
            settings.limits.max_json_depth,
            settings.limits.max_body_bytes,
            runtime.metrics,
            request_id_of,
        )
        endpoint = federated_endpoint
        federation_routes = [
            Route("/graphqlsha/{sha}", federated_endpoint, methods=["POST"]),
            Route("/sha256", federated_endpoint.sha256),
            Route("/git-commit-info/{sha}", federated_endpoint.git_commit_info),
        ]

    def degraded() -> dict[str, str]:
        if federation is None or federation.degraded is None:
            return {}
        return {federation.source.upstream: federation.degraded}

    health = HealthEndpoints(runtime, degraded=degraded)
    path = settings.graphql_path
    routes: list[BaseRoute] = [
        Route(path, endpoint, methods=["GET", "POST"]),
        *federation_routes,
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
        if federation is not None:
            await federation.start()
        yield
        if federation is not None:
            await federation.aclose()
        await tasks.aclose()
        await sources.aclose()
        await runtime.aclose()

    known = frozenset({path, "/healthz", "/readyz", "/metrics"})
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(HttpMetricsMiddleware, metrics=runtime.metrics, routes=known),
            Middleware(
                BodyLimitMiddleware,
                max_bytes=settings.limits.max_body_bytes,
                max_compressed_bytes=settings.limits.max_compressed_body_bytes,
                read_timeout=settings.http.body_timeout,
            ),
            Middleware(WebSocketMessageLimitMiddleware, max_bytes=settings.limits.max_body_bytes),
        ],
        lifespan=lifespan,
    )
    app.state.federation = federation
    return app


def app_from_environment() -> Starlette:
    """uvicorn factory for `serve`: settings from the config file and environment."""
    return create_app(load_settings())
