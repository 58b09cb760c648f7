"""An integration's GraphQL client: gql over HTTP and WebSocket, typed results, clear errors."""

import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any, TypeVar

import httpx
from gql import Client, GraphQLRequest
from gql.client import AsyncClientSession
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


class GatewayClient:
    """One GraphQL endpoint (the gateway, or qontract-server) over HTTP, plus WebSocket."""

    def __init__(
        self,
        endpoint: Endpoint,
        service: str = "qontract-gateway",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.service = service
        self.url = endpoint.url
        self._endpoint = endpoint
        token = endpoint.bearer_token()
        self._headers = {**environment_headers(), **(headers or {})}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        transport = HTTPXAsyncTransport(
            url=endpoint.url, headers=self._headers, timeout=endpoint.timeout
        )
        self._http = Client(transport=transport, execute_timeout=None)
        self._session: AsyncClientSession | None = None
        self._token = token

    async def execute(
        self,
        operation: Operation[ResultT],
        variables: Mapping[str, Any] | None = None,
        read_timeout: float | None = None,
    ) -> ResultT:
        """Run `operation` and validate its data into the operation's model."""
        data = await self.execute_document(operation.document, variables, read_timeout)
        return self._validate(operation, data)

    async def execute_document(
        self,
        document: str,
        variables: Mapping[str, Any] | None = None,
        read_timeout: float | None = None,
    ) -> dict[str, Any]:
        """Run a GraphQL document built at run time; its data as a dict, errors raised."""
        request = GraphQLRequest(document, variable_values=dict(variables or {}))
        extra_args = {"timeout": read_timeout} if read_timeout is not None else {}
        try:
            if self._session is None:
                self._session = await self._http.connect_async()  # type: ignore[no-untyped-call]
            result = await self._session.execute(request, extra_args=extra_args)
        except TransportQueryError as error:
            raise _query_error(self.service, (error.errors or [{}])[0]) from None
        except TransportServerError as error:
            raise self._http_error(error) from None
        except TransportProtocolError as error:
            raise GatewayQueryError(self.service, "PROTOCOL", str(error), []) from None
        except (httpx.TransportError, TransportConnectionFailed, OSError) as error:
            raise GatewayUnreachable(self.service, self.url, _reason(error)) from None
        return dict(result)

    async def subscribe(
        self, operation: Operation[ResultT], variables: Mapping[str, Any] | None = None
    ) -> AsyncIterator[ResultT]:
        """Each event of a subscription, validated into the operation's model."""
        assert isinstance(self._endpoint, GatewayEndpoint), "subscriptions need a gateway endpoint"
        transport = WebsocketsTransport(
            url=self._endpoint.websocket_url(),
            headers={k: v for k, v in self._headers.items() if k != "Authorization"},
            init_payload={"Authorization": f"Bearer {self._token}"} if self._token else {},
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
            connect_timeout=self._endpoint.timeout,
        )
        request = GraphQLRequest(operation.document, variable_values=dict(variables or {}))
        url = self._endpoint.websocket_url()
        try:
            async with Client(transport=transport, execute_timeout=None) as session:
                async for data in session.subscribe(request):
                    yield self._validate(operation, data)
        except TransportQueryError as error:
            raise _query_error(self.service, (error.errors or [{}])[0]) from None
        except InvalidStatus as error:
            status = error.response.status_code
            if status in (401, 403):
                raise AuthRefused(self.service, f"HTTP {status}", "WebSocket refused") from None
            raise GatewayUnreachable(self.service, url, f"HTTP {status}") from None
        except (TransportConnectionFailed, WebSocketException, OSError) as error:
            raise GatewayUnreachable(self.service, url, _reason(error)) from None

    async def aclose(self) -> None:
        """Close the HTTP connection pool (idempotent)."""
        if self._session is not None:
            self._session = None
            await self._http.close_async()  # type: ignore[no-untyped-call]

    def _validate(self, operation: Operation[ResultT], data: Mapping[str, Any]) -> ResultT:
        try:
            return operation.result.model_validate(data)
        except ValidationError as error:
            problem = error.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(part) for part in problem["loc"])
            message = f"{operation.path}: unexpected data at {where}: {problem['msg']}"
            raise GatewayQueryError(self.service, "BAD_RESPONSE", message, []) from None

    def _http_error(self, error: TransportServerError) -> Exception:
        status = error.code or 0
        if status in (401, 403):
            return AuthRefused(self.service, f"HTTP {status}", str(error))
        if status >= 500:
            return GatewayUnreachable(self.service, self.url, f"HTTP {status}")
        return GatewayQueryError(self.service, f"HTTP_{status}", str(error), [])


def _reason(error: BaseException) -> str:
    if isinstance(error, httpx.TimeoutException | asyncio.TimeoutError):
        return f"timed out ({type(error).__name__})"
    text = str(error) or type(error).__name__
    return f"cannot connect ({text})"
