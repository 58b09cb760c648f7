"""Cached LDAP data: whether each username exists, cached per user."""

import re
from collections.abc import Sequence

from gateway.cache import FLAG, Cached, CacheKey, get_or_fetch_batch
from gateway.errors import GatewayError
from gateway.source import AccountSource, IdSyntax
from resolvers.ldap.api import LDAP, LdapApi

DEFAULT_TTL = {"users": 6 * 3600.0}
"""Six hours, as the REST qontract-api caches its LDAP user checks."""

USERNAME = IdSyntax(
    "LDAP username",
    re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]*\$?"),
    255,
    "letters, digits, `.`, `_` and `-` (not first), optionally ending in `$` (FreeIPA's uid)",
)

Existence = Cached[bool] | GatewayError


class LdapSource(AccountSource[LdapApi]):
    """One LDAP server's users through the shared cache."""

    system = LDAP
    default_ttl = DEFAULT_TTL

    async def users_exist(self, usernames: Sequence[str]) -> dict[str, Existence]:
        """For each username, whether a person with that uid exists (uids match ignoring case).

        Cached per user, so a list that grows by one name searches for that name only; the
        names missing from the cache are searched together (one bind, OR filters of
        `names_per_search`). A malformed name is its own BAD_USER_INPUT; a failed search is
        an error for each name it asked about, never an answer of `False`.
        """
        valid, errors = USERNAME.split(usernames)
        by_key = {self.key("users", name.lower()): name.lower() for name in valid}

        async def fetch(missing: list[CacheKey]) -> dict[CacheKey, bool | GatewayError]:
            found = await self.api.existing([by_key[key] for key in missing])
            return {key: by_key[key] in found for key in missing}

        found = await get_or_fetch_batch(self.cache, by_key, fetch, self.ttl["users"], FLAG)
        results: dict[str, Existence] = dict(errors)
        results.update((name, found[self.key("users", name.lower())]) for name in valid)
        return results
