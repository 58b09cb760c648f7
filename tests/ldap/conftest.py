"""A session `slapd`, and LDAP sources built on it with the test's Redis."""

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from gateway.credentials import CredentialHeaders
from gateway.runtime import Runtime
from gateway.settings import Settings
from resolvers.ldap.api import LdapApi, bind_password
from resolvers.ldap.settings import LdapAccountSettings
from resolvers.ldap.source import LdapSource
from tests.support.ldap_server import BASE_DN, BIND_DN, PrivateSlapd, slapd_installed
from tests.support.required import skip_unless_required

PASSWORD_VARIABLE = "QGW_TEST_LDAP_BIND_PASSWORD"


@pytest.fixture(scope="session")
def slapd() -> Iterator[PrivateSlapd]:
    """One private slapd for the session (STARTTLS required, users under dc=example,dc=com)."""
    if not slapd_installed():
        skip_unless_required(
            "slapd is not installed (apt-get install slapd ldap-utils)",
            "QONTRACT_GATEWAY_REQUIRE_SLAPD",
        )
    with PrivateSlapd() as server:
        yield server


@dataclass
class BuiltLdap:
    """An LDAP source on its own runtime, as the gateway would build it."""

    runtime: Runtime
    source: LdapSource

    def requests(self, operation: str, status: str) -> float:
        """LDAP operations of `operation` answered `status`, from the upstream metrics."""
        value = self.runtime.metrics.registry.get_sample_value(
            "qontract_gateway_upstream_requests_total",
            {"system": "ldap", "account": "main", "operation": operation, "status": status},
        )
        return value or 0.0


LdapFactory = Callable[..., Awaitable[BuiltLdap]]


def ldap_account(server: PrivateSlapd, **extra: Any) -> LdapAccountSettings:
    """Settings of account `main` on `server`, the password read from the environment."""
    fields: dict[str, Any] = {
        "name": "main",
        "url": server.url,
        "base_dn": BASE_DN,
        "bind_dn": BIND_DN,
        "bind_password": {"env": PASSWORD_VARIABLE},
        "ca_file": server.certificates.ca,
        "timeout": 5.0,
        "connect_timeout": 2.0,
    }
    return LdapAccountSettings.model_validate({**fields, **extra})


@pytest.fixture
async def ldap_factory(
    redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[LdapFactory]:
    """`await factory(server, password=..., **account)`: an LDAP source on a fresh runtime."""
    built: list[BuiltLdap] = []

    async def factory(server: PrivateSlapd, password: str | None = None, **extra: Any) -> BuiltLdap:
        monkeypatch.setenv(PASSWORD_VARIABLE, password or server.bind_password)
        account = ldap_account(server, **extra)
        runtime = Runtime.create(Settings(redis={"url": redis_url, "namespace": namespace}))
        api = LdapApi(
            account,
            runtime.upstream_metrics,
            CredentialHeaders(account.bind_password, bind_password, None),
        )
        ldap = BuiltLdap(runtime, LdapSource(account.name, api, runtime.cache, account.ttl))
        built.append(ldap)
        return ldap

    yield factory
    for ldap in built:
        await ldap.source.api.aclose()
        await ldap.runtime.aclose()
