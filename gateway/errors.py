"""Errors with a stable `extensions.code`, raised anywhere and shown to GraphQL clients as is."""

from collections.abc import Sequence
from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """The codes a client can rely on in `errors[].extensions.code`."""

    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
    UPSTREAM_RATE_LIMITED = "UPSTREAM_RATE_LIMITED"
    UPSTREAM_ERROR = "UPSTREAM_ERROR"
    TIMEOUT = "TIMEOUT"
    INTERNAL = "INTERNAL"
    SUBSCRIPTION_DROPPED = "SUBSCRIPTION_DROPPED"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    BUNDLE_NOT_FOUND = "BUNDLE_NOT_FOUND"
    CONFLICT = "CONFLICT"


class GatewayError(Exception):
    """An error whose message is safe to show to the caller (it never holds a secret)."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, code: ErrorCode | None = None, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.extensions = {"code": self.code.value, **extensions}


class Unauthenticated(GatewayError):
    """No valid credentials: missing, malformed, expired, revoked or forged token."""

    code = ErrorCode.UNAUTHENTICATED


class Forbidden(GatewayError):
    """Valid credentials without the scope the operation needs."""

    code = ErrorCode.FORBIDDEN


class NotFound(GatewayError):
    """The named thing does not exist."""

    code = ErrorCode.NOT_FOUND


class BadUserInput(GatewayError):
    """The request is malformed or names something the gateway does not know."""

    code = ErrorCode.BAD_USER_INPUT


class UpstreamUnavailable(GatewayError):
    """An upstream (or the shared Redis) cannot be reached, or its breaker is open."""

    code = ErrorCode.UPSTREAM_UNAVAILABLE


def redis_unavailable(error: Exception, what: str = "shared state store") -> UpstreamUnavailable:
    """The one form any Redis failure takes for a caller: UPSTREAM_UNAVAILABLE, upstream redis.

    Also for the task broker (Celery's transport on the same Redis), whose errors are kombu's.
    """
    return UpstreamUnavailable(
        f"{what} (Redis) unreachable: {type(error).__name__}", upstream="redis"
    )


class UpstreamRateLimited(GatewayError):
    """The shared rate budget for an upstream account is spent past the caller's deadline."""

    code = ErrorCode.UPSTREAM_RATE_LIMITED


class UpstreamError(GatewayError):
    """The upstream answered with an error that retrying will not fix."""

    code = ErrorCode.UPSTREAM_ERROR


class SubscriptionDropped(GatewayError):
    """The gateway ended a live subscription (`reason`); resubscribe with `since=last_id`."""

    code = ErrorCode.SUBSCRIPTION_DROPPED


class BundleNotFound(GatewayError):
    """qontract-server does not know the bundle sha asked for (after a brief retry)."""

    code = ErrorCode.BUNDLE_NOT_FOUND


class Timeout(GatewayError):
    """The operation did not finish within its deadline."""

    code = ErrorCode.TIMEOUT


class LimitExceeded(GatewayError):
    """A bound on what one caller or one process may hold was reached; retry once some ends."""

    code = ErrorCode.LIMIT_EXCEEDED


class Conflict(GatewayError):
    """Another run is changing part of what this one would change; retry once it has ended."""

    code = ErrorCode.CONFLICT


SHOWN_CHARACTERS = 64


def shown(text: str, limit: int = SHOWN_CHARACTERS) -> str:
    """A caller-supplied string as an error may echo it: quoted, at most `limit` characters
    of it (then an ellipsis), control characters escaped, so no echo outgrows its input's
    first few bytes."""
    cut = text[:limit]
    quoted = repr(cut)
    return f"{quoted[:-1]}…{quoted[-1]}" if len(text) > limit else quoted


NAMED_AT_MOST = 10
"""Names a message lists (the rest are counted), so its size does not grow with input."""


def named(names: Sequence[str], at_most: int = NAMED_AT_MOST) -> str:
    """`names` (already checked to be short and plain) comma-separated for a message: the first
    `at_most`, then how many more."""
    more = f" and {len(names) - at_most} more" if len(names) > at_most else ""
    return ", ".join(names[:at_most]) + more
