"""qontract-server as qontract-reconcile reads it: one pinned bundle per run, schemas checked."""

import re
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import BaseModel

from reconcile_client.config import QontractServerEndpoint
from reconcile_client.errors import ConfigError, GatewayQueryError, GatewayUnreachable
from reconcile_client.gateway_client import (
    GatewayClient,
    environment_headers,
    http_status_error,
    reason,
)
from reconcile_client.operations import INTEGRATIONS, Operation

ResultT = TypeVar("ResultT", bound=BaseModel)

SERVICE = "qontract-server"
SHA = re.compile(r"[0-9a-f]{64}")


def server_path(url: str, path: str) -> str:
    """`url` with its path replaced by `path`, as qontract-reconcile derives /sha256 and friends."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=path))


class QontractServer:
    """Desired state from app-interface: `GET /sha256` once, every query to `/graphqlsha/<sha>`.

    Every answer's `extensions.schemas` must be among the `schemas` of the integration's
    app-interface datafile (read once per run, unchecked), unless `validate_schemas` is off.
    """

    def __init__(self, endpoint: QontractServerEndpoint, integration: str) -> None:
        self.endpoint = endpoint
        self.integration = integration
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
            touched = extensions.get("schemas") or []
            forbidden = sorted({str(schema) for schema in touched} - allowed)
            if forbidden:
                raise ConfigError(
                    f"operation {operation.name} reads schemas outside the `schemas` of "
                    f"integration {self.integration!r} in app-interface: {', '.join(forbidden)}"
                )
        return client.validate(operation, data)

    async def aclose(self) -> None:
        """Close the GraphQL client (idempotent)."""
        if self._client is not None:
            await self._client.aclose()

    async def _pinned(self) -> GatewayClient:
        if self._client is None:
            url = self.endpoint.url
            if self.endpoint.pin_sha:
                self.sha = await self._latest_sha()
                url = server_path(url, f"/graphqlsha/{self.sha}")
            self._client = GatewayClient(self.endpoint.model_copy(update={"url": url}), SERVICE)
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
            raise GatewayUnreachable(SERVICE, url, reason(error)) from None
        if response.status_code >= 400:
            message = f"GET /sha256 answered HTTP {response.status_code}"
            raise http_status_error(SERVICE, url, response.status_code, message)
        sha = response.text.strip()
        if not SHA.fullmatch(sha):
            raise GatewayQueryError(SERVICE, "BAD_RESPONSE", "GET /sha256 is not a sha256", [])
        return sha

    async def _allowed_schemas(self, client: GatewayClient) -> frozenset[str] | None:
        if not self.endpoint.validate_schemas:
            return None
        if self._allowed is None:
            data = await client.execute(INTEGRATIONS)
            found = [i for i in data.integrations or [] if i.name == self.integration]
            if not found or not found[0].schemas:
                raise ConfigError(
                    f"integration {self.integration!r} is not defined in app-interface or lists "
                    "no schemas (its /app-sre/integration-1.yml datafile names the schemas it may "
                    "read); define it or set qontract_server.validate_schemas to false"
                )
            self._allowed = frozenset(found[0].schemas)
        return self._allowed
