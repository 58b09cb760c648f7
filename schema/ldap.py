"""LDAP types and root fields: `ldap_users_v1`."""

import strawberry
from strawberry.types import Info

from resolvers.ldap.source import LdapSource
from schema.context import RequestContext
from schema.inputs import bounded
from schema.loaders import items, keyed_loader


@strawberry.type(name="LdapUser_v1")
class LdapUser:
    """Whether a person with uid `username` is among the server's active users."""

    username: str
    exists: bool


async def ldap_users(
    info: Info[RequestContext, None], instance: str, usernames: list[str]
) -> list[LdapUser | None]:
    """Resolve `ldap_users_v1`: one item per username, each cached on its own; a malformed
    name or a failed search is a null item with its own error, never `exists: false`."""
    source = info.context.sources.get(LdapSource, instance)
    loader = keyed_loader(info, f"ldap/{instance}/users", source.users_exist)
    loaded = [one.result for one in await loader.load_many(usernames)]
    return items(
        info,
        zip(usernames, loaded, strict=True),
        lambda name, exists: LdapUser(username=name, exists=exists),
    )


@strawberry.type
class LdapQuery:
    """LDAP root fields (joined into Query by the system registry)."""

    ldap_users_v1: list[LdapUser | None] = strawberry.field(
        resolver=ldap_users,
        extensions=bounded("read"),
        description=(
            "For each username, whether LDAP `instance` has an active person with that uid "
            "(case-insensitive), cached per user"
        ),
    )
