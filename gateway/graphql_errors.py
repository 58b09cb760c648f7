"""Every GraphQL error leaves with a stable `extensions.code` and the request id."""

from typing import Any

from graphql import GraphQLError
from redis.exceptions import RedisError
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from gateway.errors import ErrorCode, GatewayError, redis_unavailable

INTERNAL_MESSAGE = "Internal error; the gateway log has the details under this request id"
MAX_MESSAGE_CHARS = 1000
_REQUEST_MISTAKES = (
    GraphQLError,
    MissingQueryError,
    CannotGetOperationTypeError,
    InvalidOperationTypeError,
)


def bounded(message: str) -> str:
    """`message`, cut to MAX_MESSAGE_CHARS: names a caller sent are echoed, never in full."""
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[: MAX_MESSAGE_CHARS - 1] + "…"


def map_redis_failures(errors: list[GraphQLError]) -> None:
    """Turn every error a Redis failure raised into UPSTREAM_UNAVAILABLE (upstream redis).

    The errors are changed in place, before masking and before any transport formats them,
    so HTTP and WebSocket callers see the same coded error and no traceback is logged.
    """
    for error in errors:
        original = error.original_error
        if isinstance(original, RedisError):
            mapped = redis_unavailable(original)
            error.message = mapped.message
            error.original_error = mapped
            error.extensions = dict(mapped.extensions)


def is_unexpected(error: GraphQLError) -> bool:
    """True for errors raised by a bug rather than by the request or an upstream."""
    original = error.original_error
    return original is not None and not isinstance(original, (GatewayError, *_REQUEST_MISTAKES))


def error_code(error: GraphQLError) -> ErrorCode:
    """The code for `error`: its own, BAD_USER_INPUT for a bad document, else INTERNAL."""
    original = error.original_error
    if isinstance(original, GatewayError):
        return original.code
    if error.message == INTERNAL_MESSAGE:
        return ErrorCode.INTERNAL
    if original is None or isinstance(original, _REQUEST_MISTAKES):
        return ErrorCode.BAD_USER_INPUT
    return ErrorCode.INTERNAL


def format_error(error: GraphQLError, request_id: str) -> dict[str, Any]:
    """The error as JSON, with `extensions.code` and `extensions.request_id`."""
    formatted: dict[str, Any] = dict(error.formatted)
    formatted["message"] = bounded(error.message)
    extensions = dict(formatted.get("extensions") or {})
    original = error.original_error
    if isinstance(original, GatewayError):
        extensions.update(original.extensions)
    extensions["code"] = error_code(error).value
    extensions["request_id"] = request_id
    formatted["extensions"] = extensions
    return formatted


def http_error(message: str, request_id: str, code: ErrorCode) -> dict[str, Any]:
    """A GraphQL-shaped body for a request refused before execution."""
    return {
        "errors": [
            {
                "message": bounded(message),
                "extensions": {"code": code.value, "request_id": request_id},
            }
        ]
    }
