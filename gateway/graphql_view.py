"""The GraphQL endpoint: Strawberry's ASGI view with our context, error shape and GraphiQL."""

from collections.abc import Callable
from typing import Any, Protocol

import structlog
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.schema import BaseSchema
from strawberry.types import ExecutionResult

from gateway.errors import ErrorCode
from gateway.graphql_errors import error_code, format_error, http_error
from gateway.runtime import Runtime

log = structlog.get_logger("gateway.graphql")


class ConnectionContext(Protocol):
    """What the view needs of a context: the credentials it carries."""

    authorization: str | None
    connection_params: dict[str, object] | None


ContextFactory = Callable[[Request | WebSocket, str, str | None], ConnectionContext]


def request_id_of(request: Request | WebSocket) -> str:
    """The id RequestIdMiddleware put on the request."""
    return str(request.scope.get("state", {}).get("request_id", ""))


class GatewayGraphQL(GraphQL[ConnectionContext, None]):
    """POST/GET queries, graphql-transport-ws subscriptions and the offline GraphiQL page."""

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
            max_subscriptions_per_connection=runtime.settings.limits.max_subscriptions_per_connection,
        )
        self.runtime = runtime
        self._make_context = make_context
        self._graphiql_html = graphiql_html

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """As Strawberry, but refusals come back as GraphQL-shaped JSON with a code."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await self.run(request)
        except HTTPException as refusal:
            body = http_error(refusal.reason, request_id_of(request), ErrorCode.BAD_USER_INPUT)
            self.runtime.metrics.graphql_errors.labels(ErrorCode.BAD_USER_INPUT.value).inc()
            response = JSONResponse(body, status_code=refusal.status_code)
        await response(scope, receive, send)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> ConnectionContext:
        """A fresh context per request; the token is checked when a field needs a scope."""
        return self._make_context(
            request, request_id_of(request), request.headers.get("authorization")
        )

    async def on_ws_connect(self, context: ConnectionContext) -> dict[str, object] | None:
        """Take the token from connection_init's payload when the handshake had none."""
        payload = context.connection_params or {}
        token = payload.get("Authorization") or payload.get("authorization")
        if isinstance(token, str):
            context.authorization = token
        return None

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        """data, errors with code and request id, and extensions."""
        response: dict[str, Any] = {"data": result.data}
        if result.errors:
            request_id = request_id_of(request)
            response["errors"] = [format_error(error, request_id) for error in result.errors]
            for error in result.errors:
                self.runtime.metrics.graphql_errors.labels(error_code(error).value).inc()
        if result.extensions:
            response["extensions"] = result.extensions
        return response  # type: ignore[return-value]

    async def render_graphql_ide(self, request: Request) -> Response:
        """The GraphiQL page with every asset served by this gateway."""
        return HTMLResponse(self._graphiql_html or "")
