"""The GraphQL endpoint: Strawberry's ASGI view with our context, error shape and GraphiQL."""

import json
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

import orjson
import structlog
from cross_web import AsyncHTTPRequestAdapter, HTTPException, StarletteRequestAdapter
from graphql import GraphQLError
from opentelemetry.trace import SpanKind
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from gateway import tracing
from gateway.auth import Identity
from gateway.errors import ErrorCode, GatewayError
from gateway.graphql_errors import error_code, format_error, http_error
from gateway.graphql_request import BodyTooLarge, body_encoding, inflate, read_body, read_params
from gateway.graphql_ws import GatewayTransportWS
from gateway.result_cache import ResultCache, StoredResult
from gateway.runtime import Runtime

log = structlog.get_logger("gateway.graphql")


class ConnectionContext(Protocol):
    """What the view needs of a context: credentials, and what decides result caching."""

    request_id: str
    authorization: str | None
    connection_params: dict[str, object] | None
    provenance: list[dict[str, Any]]
    result_cacheable: bool
    cache_writes: int

    @property
    def identity(self) -> Identity:
        """The caller (raises for a bad token)."""


ContextFactory = Callable[[Request | WebSocket, str, str | None], ConnectionContext]


def request_id_of(request: Request | WebSocket) -> str:
    """The id RequestIdMiddleware put on the request."""
    return str(request.scope.get("state", {}).get("request_id", ""))


class GatewayRequestAdapter(StarletteRequestAdapter):
    """Strawberry's view of a Starlette request, with the request itself at hand."""

    @property
    def request(self) -> Request:
        """The Starlette request (its state holds what __call__ read from the body)."""
        return self._request


class GatewayGraphQL(GraphQL[ConnectionContext, None]):
    """POST/GET queries, graphql-transport-ws subscriptions and the offline GraphiQL page."""

    request_adapter_class = GatewayRequestAdapter
    stream_transport_classes_by_protocol = {}  # subscriptions stream over WebSocket only
    graphql_transport_ws_handler_class = GatewayTransportWS

    def __init__(
        self,
        schema: BaseSchema,
        runtime: Runtime,
        make_context: ContextFactory,
        graphiql_html: str | None,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if graphiql_html else None,
            allow_queries_via_get=True,
            keep_alive=True,
            keep_alive_interval=15,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            max_subscriptions_per_connection=runtime.settings.limits.max_subscriptions_per_connection,
        )
        self.runtime = runtime
        self.results = ResultCache(runtime.settings.cache.result_cache_entries)
        self._make_context = make_context
        self._graphiql_html = graphiql_html

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """As Strawberry, but the body is read once here and refusals are coded JSON."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            if scope["method"] == "POST":
                encoding = body_encoding(request.headers)
                limits = self.runtime.settings.limits
                body = inflate(await request.body(), encoding, limits.max_body_bytes)
                if await self._serve_stored(request, body, send):  # these bytes parsed before
                    return
                request.state.graphql_body = body
                request.state.graphql_request = read_body(body, limits.max_json_depth)
            response = await self.run(request)
        except HTTPException as refusal:
            error = http_error(refusal.reason, request_id_of(request), ErrorCode.BAD_USER_INPUT)
            if isinstance(refusal, BodyTooLarge):
                error["errors"][0]["extensions"]["limit"] = refusal.setting
            self.runtime.metrics.graphql_errors.labels(ErrorCode.BAD_USER_INPUT.value).inc()
            response = JSONResponse(error, status_code=refusal.status_code)
        await response(scope, receive, send)

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData:
        """The request __call__ read from the body, or the checked GET parameters."""
        transport = self._get_stream_transport_from_headers(request.headers)
        if request.method == "GET":
            data = read_params(request.query_params, self.runtime.settings.limits.max_json_depth)
        else:
            assert isinstance(request, GatewayRequestAdapter)
            data = request.request.state.graphql_request
        return replace(data, protocol=transport.protocol if transport else "http")

    async def _serve_stored(self, request: Request, body: bytes, send: Send) -> bool:
        """Answer from the result cache when this caller sent this exact query before."""
        try:
            identity = self.runtime.verifier.identify(request.headers.get("authorization"))
        except GatewayError:
            return False
        stored = self.results.get(_scopes(identity), body, self.runtime.cache.writes)
        if stored is None:
            return False
        started = time.perf_counter()
        response = Response(stored.response(), media_type="application/json")
        with tracing.span("graphql.operation", kind=SpanKind.SERVER) as span:
            if span is not None:
                tracing.describe_operation(span, stored.operation, "query")
                span.set_attribute("qontract.result_cache", "hit")
            await response(request.scope, request.receive, send)
        metrics = self.runtime.metrics
        metrics.graphql_operations.labels(stored.operation, "query", "ok").inc()
        metrics.graphql_latency.labels("query", "ok").observe(time.perf_counter() - started)
        return True

    def encode_json(self, data: object) -> bytes:
        """Compact JSON in UTF-8 by orjson (several times faster than `json` on big answers);
        `json` for what orjson refuses (integers beyond 64 bits)."""
        try:
            return orjson.dumps(data)
        except TypeError:
            return json.dumps(data, separators=(",", ":")).encode()

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> ConnectionContext:
        """A fresh context per request; the token is checked when a field needs a scope."""
        context = self._make_context(
            request, request_id_of(request), request.headers.get("authorization")
        )
        context.cache_writes = self.runtime.cache.writes
        request.state.gateway_context = context
        return context

    async def on_ws_connect(self, context: ConnectionContext) -> dict[str, object] | None:
        """Take the token from connection_init's payload (else the handshake's); with auth on,
        refuse the connection (4403) unless it is valid."""
        payload = context.connection_params or {}
        token = payload.get("Authorization", payload.get("authorization"))
        if token is not None and not isinstance(token, str):
            raise ConnectionRejectionError
        if token is not None:
            context.authorization = token
        if self.runtime.verifier.enabled:
            try:
                context.identity  # noqa: B018 - checks the token
            except GatewayError:
                raise ConnectionRejectionError from None
        return None

    def formatted_errors(self, errors: list[GraphQLError], request_id: str) -> list[dict[str, Any]]:
        """Errors in the one shape every transport uses, counted by code."""
        for error in errors:
            self.runtime.metrics.graphql_errors.labels(error_code(error).value).inc()
        return [format_error(error, request_id) for error in errors]

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        """data, errors with code and request id, and extensions."""
        response: dict[str, Any] = {"data": result.data}
        if result.errors:
            response["errors"] = self.formatted_errors(result.errors, request_id_of(request))
        if result.extensions:
            response["extensions"] = result.extensions
        await self._store(request, result)
        return response  # type: ignore[return-value]

    async def _store(self, request: Request, result: ExecutionResult) -> None:
        """Keep a successful, cache-backed query's result for as long as its data is local."""
        context: ConnectionContext | None = getattr(request.state, "gateway_context", None)
        if (
            self.results.max_entries <= 0
            or context is None
            or result.errors
            or not context.result_cacheable
        ):
            return
        expiries = [self.runtime.cache.local_expiry(p["key"]) for p in context.provenance]
        if request.method != "POST" or None in expiries:
            return
        name = request.state.graphql_request.operation_name
        self.results.put(
            _scopes(context.identity),
            request.state.graphql_body,
            StoredResult(
                data=self.encode_json(result.data),
                provenance=list(context.provenance),
                operation=self.runtime.metrics.operation_label(name),
                stored_at=time.monotonic(),
                expires_at=min(e for e in expiries if e is not None),
                writes=context.cache_writes,
            ),
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        """The GraphiQL page with every asset served by this gateway."""
        return HTMLResponse(self._graphiql_html or "")


def _scopes(identity: Identity) -> str:
    return ",".join(sorted(identity.scopes))
