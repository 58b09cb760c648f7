"""Per-request state handed to every resolver: caller, request id, runtime, sources and tasks."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.websockets import WebSocket

from gateway.auth import Identity, TokenVerifier
from gateway.errors import GatewayError
from gateway.registry import Sources
from gateway.runtime import Runtime
from gateway.tasks.queue import TaskQueue

T = TypeVar("T")


@dataclass
class RequestContext:
    """Built once per HTTP request or WebSocket connection; never shared between them."""

    runtime: Runtime
    sources: Sources
    tasks: TaskQueue
    request: Request | WebSocket
    request_id: str
    authorization: str | None
    connection_params: dict[str, object] | None = None
    provenance: list[dict[str, Any]] = field(default_factory=list)
    result_cacheable: bool = False
    cache_writes: int = 0
    _identity: Identity | GatewayError | None = None
    _per_request: dict[str, Any] = field(default_factory=dict)

    @property
    def identity(self) -> Identity:
        """The caller; raises Unauthenticated for a missing or bad token (checked once)."""
        if self._identity is None:
            self._identity = _identify(self.runtime.verifier, self.authorization)
        if isinstance(self._identity, GatewayError):
            raise self._identity
        return self._identity

    def per_request(self, name: str, factory: Callable[[], T]) -> T:
        """The request's own instance of `name` (a DataLoader, say), made on first use."""
        if name not in self._per_request:
            self._per_request[name] = factory()
        value: T = self._per_request[name]
        return value


def _identify(verifier: TokenVerifier, authorization: str | None) -> Identity | GatewayError:
    try:
        return verifier.identify(authorization)
    except GatewayError as error:
        return error
