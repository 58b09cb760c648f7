"""Vault secrets for the gateway and reconcilers: a short read-through cache in this process only.

Secrets are never stored in Redis, never logged and never put in an error message; no GraphQL
field returns them. Reconcilers use `VaultInstance.read/write/list/delete` from Python.
"""

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from gateway.cache import LocalTier
from gateway.credentials import CredentialUnavailable
from gateway.errors import BadUserInput, GatewayError, NotFound, shown
from gateway.settings import InvalidSettings, VaultReference
from gateway.upstream import UpstreamClient
from resolvers.vault.api import Mount, VaultApi
from resolvers.vault.settings import VaultAccountSettings
from resolvers.vault.token import VaultToken

MOUNTS_KEPT = 256
"""KV mounts remembered per instance (found once per `MOUNT_TTL`)."""
MOUNT_TTL = 600.0

Secret = dict[str, SecretStr]


def _secret(values: Mapping[str, Any]) -> Secret:
    """Every value as a SecretStr (non-string JSON values as their JSON text)."""
    return {
        str(key): SecretStr(value if isinstance(value, str) else json.dumps(value))
        for key, value in values.items()
    }


class VaultInstance:
    """One Vault instance: KV v1 or v2 found per mount, reads cached for `cache_ttl` seconds.

    Concurrent reads of one secret share one Vault request. When Vault is unreachable, a cached
    copy is served until its TTL, then the read fails with UPSTREAM_UNAVAILABLE naming Vault;
    nothing older is ever served.
    """

    def __init__(self, settings: VaultAccountSettings, client: UpstreamClient) -> None:
        self.name = settings.name
        self.settings = settings
        self.token = VaultToken(client, settings.auth, settings.name)
        self.api = VaultApi(client, self.token)
        self._secrets = LocalTier(settings.cache_max_entries, settings.cache_ttl)
        self._mounts = LocalTier(MOUNTS_KEPT, MOUNT_TTL)
        self._reads: dict[str, asyncio.Future[Secret]] = {}

    async def start(self) -> None:
        """Log in now; CredentialUnavailable names the instance when Vault is down or refuses."""
        try:
            await self.token.start()
        except GatewayError as error:
            raise CredentialUnavailable(
                f"Vault instance {self.name!r} ({self.settings.url}) failed at start-up: "
                f"{error.message}"
            ) from None

    async def aclose(self) -> None:
        """Stop token renewal and close the connection pool."""
        await self.token.aclose()
        await self.api.client.aclose()

    async def read(self, path: str, field: str, version: int | None = None) -> SecretStr:
        """The value of `field` in the secret at `path` (KV v2: of `version`, default latest)."""
        secret = await self.read_all(path, version)
        try:
            return secret[field]
        except KeyError:
            raise NotFound(
                f"Vault instance {self.name!r}: the secret at {shown(path, 256)} has no field "
                f"{shown(field)}",
                upstream="vault",
            ) from None

    async def read_all(self, path: str, version: int | None = None) -> Secret:
        """Every field of the secret at `path`, from this process's cache while it is fresh."""
        name = f"{path}\x00{version or ''}"
        entry = self._secrets.get(name)
        if entry is not None:
            cached: Secret = entry.value
            return dict(cached)
        read = self._reads.get(name)
        if read is None:
            read = asyncio.ensure_future(self._fetch(name, path, version))
            self._reads[name] = read
            read.add_done_callback(lambda _: self._reads.pop(name, None))
        return dict(await asyncio.shield(read))

    async def _fetch(self, name: str, path: str, version: int | None) -> Secret:
        mount = await self._mount(path)
        values = await self.api.read(mount, path, version)
        if values is None:
            raise NotFound(
                f"Vault instance {self.name!r}: no secret at {shown(path, 256)}"
                + (f" (version {version})" if version is not None else ""),
                upstream="vault",
            )
        secret = _secret(values)
        self._secrets.put(name, secret, time.monotonic(), self.settings.cache_ttl)
        return secret

    async def write(self, path: str, values: Mapping[str, str], *, force: bool = False) -> bool:
        """Store `values` at `path` unless it already holds exactly them (`force` writes anyway,
        a new KV v2 version); True when written. The cached copies of `path` are dropped."""
        mount = await self._mount(path, secret=True)
        if not force:
            current = await self.api.read(mount, path, None)
            if current is not None and _secret(current) == _secret(values):
                return False
        try:
            await self.api.write(mount, path, values)
        finally:
            self._forget(path)
        return True

    async def list(self, path: str) -> list[str]:
        """The names under folder `path` (sub-folders end with `/`); never cached."""
        mount = await self._mount(path)
        return await self.api.list(mount, path)

    async def delete(self, path: str) -> None:
        """Delete the secret at `path` (KV v2: every version); its cached copies are dropped."""
        mount = await self._mount(path, secret=True)
        try:
            await self.api.delete(mount, path)
        finally:
            self._forget(path)

    def _forget(self, path: str) -> None:
        self._secrets.drop_prefix(f"{path}\x00")

    async def _mount(self, path: str, *, secret: bool = False) -> Mount:
        """The KV mount of `path`, remembered per mount; `secret`: `path` must be under it."""
        parts = path.strip("/").split("/")
        mount: Mount | None = None
        for end in range(1, len(parts) + 1):
            entry = self._mounts.get("/".join(parts[:end]) + "/")
            if entry is not None:
                mount = entry.value
                break
        if mount is None:
            mount = await self.api.mount(path)
            self._mounts.put(mount.path, mount, time.monotonic(), MOUNT_TTL)
        if secret and not mount.split(path):
            raise BadUserInput(
                f"Vault instance {self.name!r}: {shown(path, 256)} is a mount, not a secret",
                upstream="vault",
            )
        return mount


class VaultSecrets:
    """Every configured Vault instance by name: the gateway's `SecretReader` for credentials
    (the registry makes it from the Vault system's sources: `Sources.secrets`)."""

    def __init__(self, instances: Mapping[str, VaultInstance]) -> None:
        self.instances = dict(instances)

    def instance(self, name: str) -> VaultInstance:
        """The instance called `name`, or BAD_USER_INPUT."""
        try:
            return self.instances[name]
        except KeyError:
            known = ", ".join(sorted(self.instances)) or "none"
            raise BadUserInput(
                f"unknown Vault instance {shown(name)}; configured: {known}"
            ) from None

    def check(self, reference: VaultReference) -> None:
        """InvalidSettings when `reference` names no configured instance."""
        if reference.instance not in self.instances:
            known = ", ".join(sorted(self.instances)) or "none"
            raise InvalidSettings(
                f"a credential names Vault instance {reference.instance!r}, which is not in "
                f"upstreams.vault (configured: {known})"
            )

    async def read_secret(self, reference: VaultReference) -> SecretStr:
        """The value `reference` points at."""
        instance = self.instance(reference.instance)
        return await instance.read(reference.path, reference.field, reference.version)

    async def start(self) -> None:
        """Log in to every instance; CredentialUnavailable names the first that fails."""
        for instance in self.instances.values():
            await instance.start()

    async def aclose(self) -> None:
        """Stop every instance's renewal and close its pool."""
        for instance in self.instances.values():
            await instance.aclose()
