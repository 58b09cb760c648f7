"""A session OpenBao dev server, and Vault systems built on it with the test's Redis."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from gateway.registry import Sources
from gateway.runtime import Runtime
from gateway.settings import Settings
from resolvers.vault.secrets import VaultInstance, VaultSecrets
from resolvers.vault.system import SYSTEM as VAULT
from tests.support.openbao import AppRoleLogin, PrivateOpenBao


@pytest.fixture(scope="session")
def openbao() -> Iterator[PrivateOpenBao]:
    """One `bao server -dev` for the session (KV v2 at `secret/`, KV v1 at `kv1/`, AppRole)."""
    with PrivateOpenBao() as server:
        yield server


@pytest.fixture
def prefix() -> str:
    """A path segment no other test writes under."""
    return f"t-{uuid.uuid4().hex[:12]}"


@dataclass
class BuiltVault:
    """A Vault system on its own runtime, as the gateway builds it."""

    runtime: Runtime
    secrets: VaultSecrets

    @property
    def main(self) -> VaultInstance:
        """The instance called `main`."""
        return self.secrets.instance("main")

    def requests(self, operation: str, status: str = "200") -> float:
        """Vault requests of `operation` answered `status`, from the upstream metrics."""
        value = self.runtime.metrics.registry.get_sample_value(
            "qontract_gateway_upstream_requests_total",
            {"system": "vault", "account": "main", "operation": operation, "status": status},
        )
        return value or 0.0


VaultFactory = Callable[..., Awaitable[BuiltVault]]


def approle_account(
    server: PrivateOpenBao, login: AppRoleLogin, monkeypatch: pytest.MonkeyPatch, **extra: Any
) -> dict[str, Any]:
    """`upstreams.vault` settings for `main`, logging in with `login` (ids in the environment)."""
    monkeypatch.setenv("QGW_TEST_VAULT_ROLE_ID", login.role_id)
    monkeypatch.setenv("QGW_TEST_VAULT_SECRET_ID", login.secret_id)
    return {
        "name": "main",
        "url": server.url,
        "auth": {
            "approle": {
                "role_id": {"env": "QGW_TEST_VAULT_ROLE_ID"},
                "secret_id": {"env": "QGW_TEST_VAULT_SECRET_ID"},
            }
        },
        **extra,
    }


@pytest.fixture
async def vault_factory(
    redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[VaultFactory]:
    """`await factory(server, role=..., **account)`: a started Vault system on a new AppRole."""
    built: list[BuiltVault] = []

    async def factory(
        server: PrivateOpenBao, start: bool = True, login: AppRoleLogin | None = None, **extra: Any
    ) -> BuiltVault:
        login = login or server.approle(f"role-{uuid.uuid4().hex[:8]}")
        account = approle_account(server, login, monkeypatch, **extra)
        settings = Settings(
            redis={"url": redis_url, "namespace": namespace}, upstreams={"vault": [account]}
        )
        runtime = Runtime.create(settings)
        sources = Sources.create(runtime, (VAULT,))
        assert isinstance(sources.secrets, VaultSecrets)
        vault = BuiltVault(runtime, sources.secrets)
        built.append(vault)
        if start:
            await vault.secrets.start()
        return vault

    yield factory
    for vault in built:
        await vault.secrets.aclose()
        await vault.runtime.aclose()
