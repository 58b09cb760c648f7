"""LDAP, declared to the system registry: servers searched over STARTTLS with their own
connections (not HTTP), per-user cached existence, `ldap_users_v1`."""

from gateway.credentials import CredentialHeaders
from gateway.registry import Connection, OwnConnections, System, SystemSchema
from gateway.runtime import Runtime
from gateway.upstream import UpstreamPolicy
from resolvers.ldap.api import LDAP, LdapApi, bind_password
from resolvers.ldap.settings import LdapAccountSettings
from resolvers.ldap.source import LdapSource
from schema.ldap import LdapQuery


def connection(account: LdapAccountSettings) -> Connection:
    """The server's URL and the bind password as the account's credential (no HTTP pool is
    built from it: LdapApi keeps its own connections)."""
    return Connection(
        account.url,
        account.bind_password,
        None,
        UpstreamPolicy(read_timeout=account.timeout, connect_timeout=account.connect_timeout),
    )


def password(value: str | None, account: LdapAccountSettings) -> dict[str, str]:
    """The bind password, by name, as `LdapApi` asks for it before each batch."""
    return bind_password(value or "")


def source(
    account: LdapAccountSettings, credential: CredentialHeaders | None, runtime: Runtime
) -> LdapSource:
    """One LDAP server: a pool of `max_connections` binds, its breaker, the shared cache."""
    assert credential is not None  # `bind_password` is required by LdapAccountSettings
    api = LdapApi(account, runtime.upstream_metrics, credential)
    return LdapSource(account.name, api, runtime.cache, account.ttl)


async def close(ldap: LdapSource) -> None:
    """Stop the server's thread pool."""
    await ldap.api.aclose()


SYSTEM = System(
    name=LDAP,
    account_noun="LDAP instance",
    settings=LdapAccountSettings,
    source_type=LdapSource,
    headers=password,
    own_connections=OwnConnections(source, close),
    ttl=LdapSource.default_ttl,
    connection=connection,
    graphql=SystemSchema(queries=(LdapQuery,), cache_backed=frozenset({"ldap_users_v1"})),
)
