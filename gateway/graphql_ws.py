"""graphql-transport-ws as Strawberry runs it, with malformed messages closed and errors coded."""

from collections.abc import Mapping
from typing import Any, Protocol, cast

from graphql import GraphQLError
from strawberry.schema.schema import StreamResult
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ErrorMessage,
    Message,
    NextMessage,
    SubscribeMessage,
)
from strawberry.types.execution import ExecutionResult, PreExecutionError

_OPTIONAL_OBJECTS = ("variables", "extensions")
MAX_OPERATION_ID_CHARS = 128


class ErrorFormatter(Protocol):
    """What the handler needs of the view: the HTTP error shape, counted in the metrics."""

    def formatted_errors(self, errors: list[GraphQLError], request_id: str) -> list[dict[str, Any]]:
        """Each error with `extensions.code` and `extensions.request_id`."""


class GatewayTransportWS(BaseGraphQLTransportWSHandler[Any, None]):
    """Invalid protocol messages close the socket (4400); GraphQL errors come back coded.

    A document that does not parse or validate is an `error` message for its operation, as the
    protocol says of errors before execution; the socket stays open for the next operation.
    """

    async def handle_message(self, message: Message) -> None:
        """Refuse a message of the wrong shape before Strawberry reads it."""
        if not isinstance(message, Mapping) or not isinstance(message.get("type"), str):
            await self.handle_invalid_message("Invalid message")
            return
        if message["type"] == "subscribe" and not _valid_subscribe(message):
            await self.handle_invalid_message("Invalid subscribe message")
            return
        await super().handle_message(message)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        """As Strawberry, but the per-connection limit answers with a coded error."""
        limit = self.max_subscriptions_per_connection
        if (
            self.connection_acknowledged
            and message["id"] not in self.operations
            and limit is not None
            and len(self.operations) >= limit
        ):
            error = GraphQLError(f"Subscription limit reached: {limit} operations per connection")
            await self.send_message(self._error(message["id"], [error]))
            return
        await super().handle_subscribe(message)

    async def _send_result_stream(
        self, operation: Operation[Any, None], result_source: StreamResult
    ) -> None:
        """Each result as `next` with coded errors; errors before execution as `error`."""
        first = True
        async for result in result_source:
            if first and isinstance(result, PreExecutionError):
                await operation.send_operation_message(self._error(operation.id, result.errors))
                return
            if not isinstance(result, ExecutionResult):
                error = GraphQLError("Incremental delivery is not supported over WebSocket")
                await operation.send_operation_message(self._error(operation.id, [error]))
                return
            payload: dict[str, Any] = {"data": result.data}
            if result.errors:
                payload["errors"] = self._coded(result.errors)
            if result.extensions:
                payload["extensions"] = result.extensions
            next_message = {"id": operation.id, "type": "next", "payload": payload}
            await operation.send_operation_message(cast("NextMessage", next_message))
            first = False

    def _error(self, operation_id: str, errors: list[GraphQLError] | None) -> ErrorMessage:
        message = {"id": operation_id, "type": "error", "payload": self._coded(errors)}
        return cast("ErrorMessage", message)

    def _coded(self, errors: list[GraphQLError] | None) -> list[dict[str, Any]]:
        view: ErrorFormatter = self.view  # type: ignore[assignment]
        return view.formatted_errors(errors or [], self.context.request_id)


def _valid_subscribe(message: Mapping[str, Any]) -> bool:
    """True when a subscribe message has an id, a query string and well-typed optional fields."""
    payload = message.get("payload")
    operation_id = message.get("id")
    if not isinstance(operation_id, str) or not 0 < len(operation_id) <= MAX_OPERATION_ID_CHARS:
        return False
    if not isinstance(payload, Mapping) or not isinstance(payload.get("query"), str):
        return False
    if not isinstance(payload.get("operationName"), str | None):
        return False
    return all(isinstance(payload.get(name), dict | None) for name in _OPTIONAL_OBJECTS)
