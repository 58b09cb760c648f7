"""qontract-server as qontract-reconcile reads it: one pinned bundle per run, schemas checked.

The same protocol reaches a federating gateway (`/sha256`, `/graphqlsha/<sha>`), which answers
qontract-server's queries and joined queries with live fields.
"""

import re
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import BaseModel

from reconcile_client.config import (
    ENV_PREFIX,
    Endpoint,
    GatewayEndpoint,
    QontractServerEndpoint,
)
from reconcile_client.errors import ConfigError, GatewayQueryError, GatewayUnreachable
from reconcile_client.gateway_client import (
    GatewayClient,
    environment_headers,
    http_status_error,
    reason,
    validated,
)
from reconcile_client.gql.qontract_server.integrations import IntegrationsQueryData
from reconcile_client.operations import INTEGRATIONS, Operation

ResultT = TypeVar("ResultT", bound=BaseModel)

SERVICE = "qontract-server"
SHA = re.compile(r"[0-9a-f]{64}")
INTEGRATION_SCHEMA = "/app-sre/integration-1.yml"
"""What a query reading `integrations_v1` touches; exempt when that read is the check's own."""


def server_path(url: str, path: str) -> str:
    """`url` with its path replaced by `path`, as qontract-reconcile derives /sha256 and friends."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=path))


class QontractServer:
    """Desired state from app-interface: `GET /sha256` once, every query to `/graphqlsha/<sha>`.

    Every answer's `extensions.schemas` must be among the `schemas` of the integration's
    app-interface datafile (read once per run, unchecked), unless `validate_schemas` is off.
    """

    def __init__(
        self, endpoint: QontractServerEndpoint | GatewayEndpoint, integration: str
    ) -> None:
        self.endpoint: Endpoint = endpoint
        self.integration = integration
        self.service = (
            SERVICE if isinstance(endpoint, QontractServerEndpoint) else "qontract-gateway"
        )
        self.pin_sha = endpoint.pin_sha if isinstance(endpoint, QontractServerEndpoint) else True
        self.validate_schemas = (
            endpoint.validate_schemas if isinstance(endpoint, QontractServerEndpoint) else True
        )
        self.sha: str | None = None
        self._client: GatewayClient | None = None
        self._allowed: frozenset[str] | None = None

    async def execute(
        self, operation: Operation[ResultT], variables: Mapping[str, Any] | None = None
    ) -> ResultT:
        """Run `operation` on the run's bundle; ConfigError when it reads a forbidden schema."""
        client = await self._pinned()
        allowed = await self._allowed_schemas(client)
        data, extensions = await client.execute_with_extensions(operation.document, variables)
        if allowed is not None:
            self._check_schemas(operation, extensions, allowed)
        return client.validate(operation, data)

    async def execute_self_checked(self, operation: Operation[Any]) -> dict[str, Any]:
        """Run `operation`, which reads `integrations: integrations_v1 { name schemas }` itself,
        in one request; its data, for the caller to validate (a part of it, or all).

        The answer's schemas are checked against that list (its own read of
        INTEGRATION_SCHEMA exempt, as qontract-reconcile's separate lookup is unchecked).
        """
        client = await self._pinned()
        data, extensions = await client.execute_with_extensions(operation.document)
        if self.validate_schemas:
            integrations = client.validate(INTEGRATIONS, {"integrations": data.get("integrations")})
            allowed = self._allowed_of(integrations) | {INTEGRATION_SCHEMA}
            self._check_schemas(operation, extensions, allowed)
        return data

    def validate(self, operation: Operation[ResultT], data: Mapping[str, Any]) -> ResultT:
        """`data` validated into `operation`'s model; BAD_RESPONSE naming where it is not."""
        return validated(self.service, operation, data)

    def _check_schemas(
        self, operation: Operation[Any], extensions: Mapping[str, Any], allowed: frozenset[str]
    ) -> None:
        touched = extensions.get("schemas") or []
        forbidden = sorted({str(schema) for schema in touched} - allowed)
        if forbidden:
            raise ConfigError(
                f"operation {operation.name} reads schemas outside the `schemas` of "
                f"integration {self.integration!r} in app-interface: {', '.join(forbidden)}"
            )

    async def aclose(self) -> None:
        """Close the GraphQL client (idempotent)."""
        if self._client is not None:
            await self._client.aclose()

    async def _pinned(self) -> GatewayClient:
        if self._client is None:
            url = self.endpoint.url
            if self.pin_sha:
                self.sha = await self._latest_sha()
                url = server_path(url, f"/graphqlsha/{self.sha}")
            endpoint = self.endpoint.model_copy(update={"url": url})
            self._client = GatewayClient(endpoint, self.service)
        return self._client

    async def _latest_sha(self) -> str:
        url = server_path(self.endpoint.url, "/sha256")
        headers = environment_headers()
        authorization = self.endpoint.authorization()
        if authorization:
            headers["Authorization"] = authorization
        try:
            async with httpx.AsyncClient(timeout=self.endpoint.timeout) as http:
                response = await http.get(url, headers=headers)
        except httpx.TransportError as error:
            raise GatewayUnreachable(self.service, url, reason(error)) from None
        if response.status_code == 404 and not isinstance(self.endpoint, QontractServerEndpoint):
            raise ConfigError(
                f"the gateway at {self.endpoint.url} does not serve app-interface (GET /sha256 "
                "answered HTTP 404: it federates no qontract-server); configure "
                f"qontract_server.url ({ENV_PREFIX}QONTRACT_SERVER__URL) to read it from "
                "qontract-server directly"
            )
        if response.status_code >= 400:
            message = f"GET /sha256 answered HTTP {response.status_code}"
            raise http_status_error(self.service, url, response.status_code, message)
        sha = response.text.strip()
        if not SHA.fullmatch(sha):
            message = "GET /sha256 is not a sha256"
            raise GatewayQueryError(self.service, "BAD_RESPONSE", message, [])
        return sha

    async def _allowed_schemas(self, client: GatewayClient) -> frozenset[str] | None:
        if not self.validate_schemas:
            return None
        if self._allowed is None:
            self._allowed = self._allowed_of(await client.execute(INTEGRATIONS))
        return self._allowed

    def _allowed_of(self, data: IntegrationsQueryData) -> frozenset[str]:
        """The `schemas` of this integration's datafile; ConfigError when it has none."""
        found = [i for i in data.integrations or [] if i.name == self.integration]
        if not found or not found[0].schemas:
            raise ConfigError(
                f"integration {self.integration!r} is not defined in app-interface or lists "
                "no schemas (its /app-sre/integration-1.yml datafile names the schemas it may "
                "read); define it or set qontract_server.validate_schemas to false"
            )
        return frozenset(found[0].schemas)
