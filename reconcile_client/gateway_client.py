"""An integration's GraphQL client: gql over HTTP and WebSocket, typed results, clear errors."""

import asyncio
import gzip
import os
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any, TypeVar

import httpx
from gql import Client, GraphQLRequest
from gql.client import AsyncClientSession
from gql.transport import httpx as gql_httpx
from gql.transport.exceptions import (
    TransportConnectionFailed,
    TransportProtocolError,
    TransportQueryError,
    TransportServerError,
)
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport
from pydantic import BaseModel, ValidationError
from websockets.exceptions import InvalidStatus, WebSocketException

from reconcile_client.config import Endpoint, GatewayEndpoint
from reconcile_client.errors import AuthRefused, GatewayQueryError, GatewayUnreachable
from reconcile_client.operations import Operation

ResultT = TypeVar("ResultT", bound=BaseModel)

AUTH_CODES = frozenset({"UNAUTHENTICATED", "FORBIDDEN"})
BUILD_URL_VARIABLE = "BUILD_URL"
MERGE_REQUEST_VARIABLE = "gitlabMergeRequestIid"


def environment_headers(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`X-Build-Url` and `X-GitLab-MR-ID` from BUILD_URL and gitlabMergeRequestIid, when set."""
    environ = os.environ if environ is None else environ
    headers = {}
    if environ.get(BUILD_URL_VARIABLE):
        headers["X-Build-Url"] = environ[BUILD_URL_VARIABLE]
    if environ.get(MERGE_REQUEST_VARIABLE):
        headers["X-GitLab-MR-ID"] = environ[MERGE_REQUEST_VARIABLE]
    return headers


def _query_error(service: str, error: Mapping[str, Any]) -> GatewayQueryError | AuthRefused:
    extensions = error.get("extensions") or {}
    code = str(extensions.get("code") or "GRAPHQL_ERROR")
    message = str(error.get("message", "no message"))
    if code in AUTH_CODES:
        return AuthRefused(service, code, message)
    return GatewayQueryError(service, code, message, list(error.get("path") or []))


def _of_item(error: GatewayQueryError | AuthRefused) -> bool:
    """Whether `error` is one list item's own (its path ends at an index)."""
    return (
        isinstance(error, GatewayQueryError)
        and bool(error.path)
        and isinstance(error.path[-1], int)
    )


class GzipRequestBodies:
    """Sends request bodies of `min_bytes` or more gzip-compressed (the gateway inflates them).

    An httpx transport of the httpx package gql itself uses (gql 4.4 takes `httpx2` when it is
    installed, else `httpx`; requests and streams of one cannot go through the other). gql
    closes its client, and so this transport, at the end of every session and opens the next
    one with the same transport: closing therefore replaces the connection pool rather than
    leaving a closed one behind.
    """

    def __init__(self, min_bytes: int) -> None:
        self.min_bytes = min_bytes
        self._http = gql_httpx.httpx  # type: ignore[attr-defined]  # the module gql chose
        self._inner = self._http.AsyncHTTPTransport()

    async def handle_async_request(self, request: Any) -> Any:
        """Compress the body when it is large enough and not encoded already, then send it.

        The size comes from Content-Length (gql sends JSON bodies, which always have one), so
        a small request goes out untouched, stream and all.
        """
        size = int(request.headers.get("content-length") or 0)
        if size >= self.min_bytes and "content-encoding" not in request.headers:
            headers = request.headers.copy()
            del headers["content-length"]
            headers["content-encoding"] = "gzip"
            request = self._http.Request(
                request.method,
                request.url,
                headers=headers,
                content=gzip.compress(await request.aread(), mtime=0),
                extensions=request.extensions,
            )
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Close the current connections; the next session gets a fresh pool."""
        closing, self._inner = self._inner, self._http.AsyncHTTPTransport()
        await closing.aclose()

    async def __aenter__(self) -> "GzipRequestBodies":
        """As an httpx transport: nothing to open."""
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """As an httpx transport: close the connections."""
        await self.aclose()


class GatewayClient:
    """One GraphQL endpoint (the gateway, or qontract-server) over HTTP, plus WebSocket.

    With `compress_min_bytes`, request bodies of that size or more are sent gzip-compressed
    (only the gateway accepts that; qontract-server does not).
    """

    def __init__(
        self,
        endpoint: Endpoint,
        service: str = "qontract-gateway",
        headers: Mapping[str, str] | None = None,
        compress_min_bytes: int = 0,
    ) -> None:
        self.service = service
        self.url = endpoint.url
        self._endpoint = endpoint
        self._headers = {**environment_headers(), **(headers or {})}
        authorization = endpoint.authorization()
        if authorization:
            self._headers["Authorization"] = authorization
        transport = HTTPXAsyncTransport(
            url=endpoint.url,
            headers=self._headers,
            timeout=endpoint.timeout,
            transport=GzipRequestBodies(compress_min_bytes) if compress_min_bytes else None,
        )
        self._http = Client(transport=transport, execute_timeout=None)
        self._session: AsyncClientSession | None = None

    async def execute(
        self,
        operation: Operation[ResultT],
        variables: Mapping[str, Any] | None = None,
        read_timeout: float | None = None,
    ) -> ResultT:
        """Run `operation` and validate its data into the operation's model."""
        data = await self.execute_document(operation.document, variables, read_timeout)
        return self.validate(operation, data)

    async def execute_document(
        self,
        document: str,
        variables: Mapping[str, Any] | None = None,
        read_timeout: float | None = None,
    ) -> dict[str, Any]:
        """Run a GraphQL document built at run time; its data as a dict, errors raised."""
        data, _ = await self.execute_with_extensions(document, variables, read_timeout)
        return data

    async def execute_with_extensions(
        self,
        document: str,
        variables: Mapping[str, Any] | None = None,
        read_timeout: float | None = None,
        item_errors: list[GatewayQueryError] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run a GraphQL document; its data and its `extensions`, errors raised.

        With `item_errors`, fields that answer item by item (`ldap_users_v1`: a failed item is
        null with its own error) may fail in part: errors whose path ends at a list index go to
        `item_errors` and the data is returned; any other error is still raised.
        """
        request = GraphQLRequest(document, variable_values=dict(variables or {}))
        extra_args = {"timeout": read_timeout} if read_timeout is not None else {}
        try:
            if self._session is None:
                self._session = await self._http.connect_async()  # type: ignore[no-untyped-call]
            result = await self._session.execute(
                request, extra_args=extra_args, get_execution_result=True
            )
        except TransportQueryError as error:
            errors = [_query_error(self.service, found) for found in error.errors or [{}]]
            if item_errors is None or error.data is None or not all(map(_of_item, errors)):
                raise errors[0] from None
            item_errors.extend(e for e in errors if isinstance(e, GatewayQueryError))
            return dict(error.data), dict(error.extensions or {})
        except TransportServerError as error:
            raise http_status_error(self.service, self.url, error.code or 0, str(error)) from None
        except TransportProtocolError as error:
            raise GatewayQueryError(self.service, "PROTOCOL", str(error), []) from None
        except (httpx.TransportError, TransportConnectionFailed, OSError) as error:
            raise GatewayUnreachable(self.service, self.url, reason(error)) from None
        return dict(result.data or {}), dict(result.extensions or {})

    async def subscribe(
        self, operation: Operation[ResultT], variables: Mapping[str, Any] | None = None
    ) -> AsyncIterator[ResultT]:
        """Each event of a subscription, validated into the operation's model."""
        async for data in self.subscribe_document(operation.document, variables):
            yield self.validate(operation, data)

    async def subscribe_document(
        self, document: str, variables: Mapping[str, Any] | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Each event of a subscription document, as a dict; errors mapped as `execute`'s."""
        assert isinstance(self._endpoint, GatewayEndpoint), "subscriptions need a gateway endpoint"
        transport = WebsocketsTransport(
            url=self._endpoint.websocket_url(),
            headers={k: v for k, v in self._headers.items() if k != "Authorization"},
            init_payload={"Authorization": self._headers["Authorization"]}
            if "Authorization" in self._headers
            else {},
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
            connect_timeout=self._endpoint.timeout,
        )
        request = GraphQLRequest(document, variable_values=dict(variables or {}))
        url = self._endpoint.websocket_url()
        try:
            async with Client(transport=transport, execute_timeout=None) as session:
                async for data in session.subscribe(request):
                    yield data
        except TransportQueryError as error:
            raise _query_error(self.service, (error.errors or [{}])[0]) from None
        except InvalidStatus as error:
            status = error.response.status_code
            if status in (401, 403):
                raise AuthRefused(self.service, f"HTTP {status}", "WebSocket refused") from None
            raise GatewayUnreachable(self.service, url, f"HTTP {status}") from None
        except (TransportConnectionFailed, WebSocketException, OSError) as error:
            raise GatewayUnreachable(self.service, url, reason(error)) from None

    async def aclose(self) -> None:
        """Close the HTTP connection pool (idempotent)."""
        if self._session is not None:
            self._session = None
            await self._http.close_async()  # type: ignore[no-untyped-call]

    def validate(self, operation: Operation[ResultT], data: Mapping[str, Any]) -> ResultT:
        """`data` validated into `operation`'s model (see `validated`)."""
        return validated(self.service, operation, data)


def validated(service: str, operation: Operation[ResultT], data: Mapping[str, Any]) -> ResultT:
    """`data` validated into `operation`'s model; BAD_RESPONSE naming where it is not."""
    try:
        return operation.result.model_validate(data)
    except ValidationError as error:
        problem = error.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in problem["loc"])
        message = f"operation {operation.name}: unexpected data at {where}: {problem['msg']}"
        raise GatewayQueryError(service, "BAD_RESPONSE", message, []) from None


def http_status_error(service: str, url: str, status: int, message: str) -> Exception:
    """The client error for an HTTP error status: refused token, unreachable, or a query error."""
    if status in (401, 403):
        return AuthRefused(service, f"HTTP {status}", message)
    if status >= 500:
        return GatewayUnreachable(service, url, f"HTTP {status}")
    return GatewayQueryError(service, f"HTTP_{status}", message, [])


def reason(error: BaseException) -> str:
    """Why a connection failed, in a few words."""
    if isinstance(error, httpx.TimeoutException | asyncio.TimeoutError):
        return f"timed out ({type(error).__name__})"
    text = str(error) or type(error).__name__
    return f"cannot connect ({text})"
