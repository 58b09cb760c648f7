"""The GraphQL endpoint: Strawberry's ASGI view with our context, error shape and GraphiQL."""

import functools
import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import orjson
import structlog
from cross_web import AsyncHTTPRequestAdapter, HTTPException, StarletteRequestAdapter
from graphql import GraphQLError
from opentelemetry.trace import SpanKind
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.exceptions import WebSocketDisconnected
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
_JSON_HEADERS = ((b"content-type", b"application/json"),)


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


class GatewayWebSocketAdapter(ASGIWebSocketAdapter):
    """Strawberry's WebSocket adapter, sending every message as a text frame: the view encodes
    JSON to bytes (orjson), which Strawberry would send as binary frames, and
    graphql-transport-ws clients refuse binary data."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        """`message` as one text frame."""
        encoded = self.view.encode_json(message)
        try:
            await self.ws.send_text(encoded if isinstance(encoded, str) else encoded.decode())
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


class GatewayGraphQL(GraphQL[ConnectionContext, None]):
    """POST/GET queries, graphql-transport-ws subscriptions and the offline GraphiQL page."""

    request_adapter_class = GatewayRequestAdapter
    websocket_adapter_class = GatewayWebSocketAdapter
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
        self._hit_children: dict[str, tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """As Strawberry, but the body is read once here and refusals are coded JSON."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        rebuilding: tuple[str, bytes] | None = None
        try:
            if scope["method"] == "POST":
                encoding = body_encoding(request.headers)
                limits = self.runtime.settings.limits
                body = inflate(await request.body(), encoding, limits.max_body_bytes)
                served, rebuilding = await self._serve_stored(request, body, send)
                if served:  # these bytes parsed before
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
        finally:
            if rebuilding is not None:
                self.results.done(*rebuilding)
        await response(scope, receive, send)

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData:
        """The request __call__ read from the body, or the checked GET parameters (protocol
        "http", their default: this view has no streaming transports to pick by `accept`)."""
        if request.method == "GET":
            return read_params(request.query_params, self.runtime.settings.limits.max_json_depth)
        assert isinstance(request, GatewayRequestAdapter)
        data: GraphQLRequestData = request.request.state.graphql_request
        return data

    async def _serve_stored(
        self, request: Request, body: bytes, send: Send
    ) -> tuple[bool, tuple[str, bytes] | None]:
        """Answer from the result cache when this caller sent this exact query before; else the
        key this request rebuilds, when its entry expired (others wait for it meanwhile)."""
        try:
            identity = self.runtime.verifier.identify(request.headers.get("authorization"))
        except GatewayError:
            return False, None
        scopes = _scopes(identity.scopes)
        stored, rebuilds = await self.results.get_or_rebuild(scopes, body, self._cache_writes)
        if stored is None:
            return False, (scopes, body) if rebuilds else None
        started = time.perf_counter()
        content = stored.response()
        start = {
            "type": "http.response.start",
            "status": 200,
            "headers": [*_JSON_HEADERS, (b"content-length", b"%d" % len(content))],
        }
        if tracing.enabled():
            with tracing.span("graphql.operation", kind=SpanKind.SERVER) as span:
                if span is not None:
                    tracing.describe_operation(span, stored.operation, "query")
                    span.set_attribute("qontract.result_cache", "hit")
                await send(start)
                await send({"type": "http.response.body", "body": content})
        else:
            await send(start)
            await send({"type": "http.response.body", "body": content})
        operations, latency = self._hit_metrics(stored.operation)
        operations.inc()
        latency.observe(time.perf_counter() - started)
        return True, None

    def _cache_writes(self) -> int:
        return self.runtime.cache.writes

    def _hit_metrics(self, operation: str) -> tuple[Any, Any]:
        """The counter and latency children a result-cache hit of `operation` records in."""
        children = self._hit_children.get(operation)
        if children is None:
            metrics = self.runtime.metrics
            children = (
                metrics.graphql_operations.labels(operation, "query", "ok"),
                metrics.graphql_latency.labels("query", "ok"),
            )
            self._hit_children[operation] = children  # operation labels are a bounded set
        return children

    def encode_json(self, data: object) -> bytes:
        """Compact JSON in UTF-8 by orjson (several times faster than `json` on big answers);
        `json` for what orjson refuses (integers beyond 64 bits)."""
        try:
            return orjson.dumps(data)
        except TypeError:
            return json.dumps(data, separators=(",", ":"), default=_fragment).encode()

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
            _scopes(context.identity.scopes),
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


@functools.lru_cache(maxsize=64)
def _scopes(scopes: frozenset[str]) -> str:
    """The result cache's key part for a set of scopes (few distinct sets exist)."""
    return ",".join(sorted(scopes))


def _fragment(value: object) -> object:
    """An `orjson.Fragment` (a spliced qontract-server answer) decoded, for the `json` fallback."""
    if isinstance(value, orjson.Fragment):
        return json.loads(value.contents)
    raise TypeError(f"{type(value).__name__} is not JSON")
