"""Typed async client of Vault's KV v1 and v2 HTTP API (no caching): mounts, read, write, list."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from gateway.errors import BadUserInput, GatewayError, UpstreamError
from gateway.ratelimit import BucketSpec
from gateway.upstream import Params, UpstreamClient, UpstreamPath
from resolvers.vault.errors import json_data, vault_errors
from resolvers.vault.token import VaultToken

VAULT = BucketSpec.within(6_000, 60, burst=60)
"""Default budget per instance: Vault publishes no limit; this only bounds a runaway loop."""


@dataclass(frozen=True)
class Mount:
    """A KV secrets engine: its path (`secret/`, with the slash) and KV version (1 or 2)."""

    path: str
    version: int

    def split(self, path: str) -> tuple[str, ...]:
        """The segments of `path` under this mount (none for the mount itself)."""
        rest = path[len(self.path) :].strip("/")
        return tuple(rest.split("/")) if rest else ()

    @property
    def segments(self) -> tuple[str, ...]:
        """The mount path's own segments."""
        return tuple(self.path.strip("/").split("/"))


def _segments(path: str) -> tuple[str, ...]:
    return tuple(part for part in path.strip("/").split("/") if part)


def _status(error: GatewayError) -> int | None:
    status = error.extensions.get("status")
    return status if isinstance(status, int) else None


class VaultApi:
    """One instance's KV endpoints; every request sends the current token of `token`."""

    def __init__(self, client: UpstreamClient, token: VaultToken) -> None:
        self.client = client
        self.token = token

    async def _request(
        self,
        operation: str,
        method: str,
        path: UpstreamPath,
        *,
        params: Params | None = None,
        json: Any = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        with vault_errors():
            token = await self.token.current()
            return await self.client.request(
                operation,
                method,
                path,
                params=params,
                json=json,
                idempotent=idempotent,
                credentials={"X-Vault-Token": token},
            )

    async def mount(self, path: str) -> Mount:
        """The KV mount `path` lies in, as the vault CLI finds it (`sys/internal/ui/mounts`)."""
        try:
            url = UpstreamPath("/v1/sys/internal/ui/mounts/{}", _segments(path))
            response = await self._request("sys.mounts.get", "GET", url)
        except UpstreamError as error:
            if _status(error) in (400, 403, 404):
                raise BadUserInput(
                    f"Vault instance {self.client.account.name!r}: no KV mount readable at "
                    f"{path[:256]!r}",
                    upstream="vault",
                ) from None
            raise
        with vault_errors():
            data = json_data(response)
            options = data.get("options") or {}
            mount_path = data.get("path")
            if data.get("type") not in ("kv", "generic") or not isinstance(mount_path, str):
                raise BadUserInput(
                    f"Vault instance {self.client.account.name!r}: {path[:256]!r} is not in a "
                    "KV secrets engine"
                )
            version = 2 if str(options.get("version") or "1") == "2" else 1
        return Mount(mount_path if mount_path.endswith("/") else f"{mount_path}/", version)

    async def read(self, mount: Mount, path: str, version: int | None) -> dict[str, Any] | None:
        """The key/value pairs at `path` (KV v2: of `version`, default the latest); None if
        there is none (or that version is deleted)."""
        if mount.version == 2:
            url = UpstreamPath("/v1/{}/data/{}", mount.segments, mount.split(path))
            params = {"version": str(version)} if version is not None else None
        else:
            if version is not None:
                raise BadUserInput(
                    f"Vault instance {self.client.account.name!r}: {path[:256]!r} is in a KV v1 "
                    "mount, which has no versions",
                    upstream="vault",
                )
            url, params = UpstreamPath("/v1/{}/{}", mount.segments, mount.split(path)), None
        try:
            response = await self._request("kv.read", "GET", url, params=params)
        except UpstreamError as error:
            if _status(error) == 404:
                return None
            raise
        with vault_errors():
            data = json_data(response)
            if mount.version == 2:
                data = data.get("data") or {}
                if not isinstance(data, dict):
                    raise UpstreamError("Vault answered a KV v2 read without `data.data`")
        return data

    async def write(self, mount: Mount, path: str, values: Mapping[str, str]) -> None:
        """Replace the secret at `path` with `values` (KV v2: a new version)."""
        if mount.version == 2:
            url = UpstreamPath("/v1/{}/data/{}", mount.segments, mount.split(path))
            body: dict[str, Any] = {"data": dict(values)}
        else:
            url, body = UpstreamPath("/v1/{}/{}", mount.segments, mount.split(path)), dict(values)
        await self._request("kv.write", "POST", url, json=body)

    async def list(self, mount: Mount, path: str) -> list[str]:
        """The names under folder `path` (sub-folders end with `/`); empty when there are none."""
        if mount.version == 2:
            url = UpstreamPath("/v1/{}/metadata/{}", mount.segments, mount.split(path))
        else:
            url = UpstreamPath("/v1/{}/{}", mount.segments, mount.split(path))
        try:
            response = await self._request("kv.list", "GET", url, params={"list": "true"})
        except UpstreamError as error:
            if _status(error) == 404:
                return []
            raise
        with vault_errors():
            keys = json_data(response).get("keys") or []
            if not isinstance(keys, list):
                raise UpstreamError("Vault answered a list without `data.keys`")
        return [str(key) for key in keys]

    async def delete(self, mount: Mount, path: str) -> None:
        """Delete the secret at `path`; KV v2: every version and its metadata."""
        if mount.version == 2:
            url = UpstreamPath("/v1/{}/metadata/{}", mount.segments, mount.split(path))
        else:
            url = UpstreamPath("/v1/{}/{}", mount.segments, mount.split(path))
        await self._request("kv.delete", "DELETE", url, idempotent=True)
