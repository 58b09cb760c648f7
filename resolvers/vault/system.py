"""Vault, declared to the system registry: instances whose secrets are the other accounts'
`vault` credentials (the registry's secret store) and reconcilers' Python API."""

from collections.abc import Mapping

from gateway.registry import Connection, System
from gateway.runtime import Runtime
from gateway.upstream import UpstreamClient, UpstreamPolicy
from resolvers.vault.api import VAULT
from resolvers.vault.secrets import VaultInstance, VaultSecrets
from resolvers.vault.settings import VaultAccountSettings


def connection(settings: VaultAccountSettings) -> Connection:
    """The instance's URL; its token is the login's (see VaultToken), sent per request."""
    return Connection(
        settings.url.rstrip("/"),
        None,
        settings.rate_limit,
        UpstreamPolicy(read_timeout=settings.timeout),
    )


def headers(token: str | None, settings: VaultAccountSettings) -> dict[str, str]:
    """The Enterprise namespace, when configured."""
    return {"X-Vault-Namespace": settings.namespace} if settings.namespace else {}


def source(
    settings: VaultAccountSettings, client: UpstreamClient, runtime: Runtime
) -> VaultInstance:
    """One instance: KV reads cached in this process only."""
    return VaultInstance(settings, client)


def secret_store(instances: Mapping[str, VaultInstance]) -> VaultSecrets:
    """Every instance by name, as the reader of `vault` credentials."""
    return VaultSecrets(instances)


SYSTEM = System(
    name="vault",
    account_noun="Vault instance",
    settings=VaultAccountSettings,
    source_type=VaultInstance,
    source=source,
    headers=headers,
    rate_limit=VAULT,
    connection=connection,
    secret_store=secret_store,
)
