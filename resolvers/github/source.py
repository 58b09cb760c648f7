"""Cached, rate-limited GitHub data: org members, repo collaborators and OWNERS files."""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import TypeAdapter

from gateway.cache import FLAG, Cached, CacheKey, CacheLookup, get_or_fetch_many
from gateway.errors import BadUserInput, GatewayError, NotFound, shown
from gateway.source import AccountSource
from resolvers.github.api import (
    ADMIN,
    REF,
    REPO,
    GitHubApi,
    GitHubCollaborator,
    GitHubUser,
    file_segments,
)
from resolvers.github.owners import (
    OwnersRecord,
    directories,
    effective_owners,
    parse_aliases,
    parse_owners,
)

SYSTEM = "github"
DEFAULT_TTL = {
    "org_members": 3600.0,
    "org_owners": 3600.0,
    "users": 3600.0,
    "repo_collaborators": 1800.0,
    "owners": 43_200.0,
    "files": 43_200.0,
}

MEMBERS = TypeAdapter(list[GitHubUser])
LOGINS = TypeAdapter(list[str])
COLLABORATORS = TypeAdapter(list[GitHubCollaborator])
OWNERS = TypeAdapter(OwnersRecord)
ALIASES = TypeAdapter(dict[str, list[str]])
Result = Cached[list[GitHubCollaborator]] | GatewayError


@dataclass(frozen=True)
class Owners:
    """Who approves and reviews changes to a path, and where the OWNERS data came from."""

    approvers: list[str]
    reviewers: list[str]
    lookups: list[CacheLookup]


class GitHubSource(AccountSource[GitHubApi]):
    """One GitHub account (an org and its token) through the shared cache and rate budget.

    The account is chosen by name: account `name` == the GitHub org, which is also the owner
    part of `owner/name` repositories and of repository URLs. One token per org keeps each
    org's 5000 requests/h budget and permissions separate, as app-interface configures them.
    """

    system = SYSTEM
    default_ttl = DEFAULT_TTL

    async def org_members(self, org: str) -> Cached[list[GitHubUser]]:
        """Members (login, id) of `org`."""

        async def fetch() -> list[GitHubUser]:
            return await self.api.org_members(org)

        key = self.key("org_members", org)
        return await self.cache.get_or_fetch(key, fetch, self.ttl["org_members"], record=MEMBERS)

    async def org_owners(self) -> Cached[list[str]]:
        """The owners of this account's org, lower-case and sorted: members with the admin role
        and pending invitations for it (an invited owner is not invited again)."""

        async def fetch() -> list[str]:
            admins, invitations = await asyncio.gather(
                self.api.org_admins(self.account), self.api.org_invitations(self.account)
            )
            invited = (i.login for i in invitations if i.login is not None and i.role == ADMIN)
            return sorted({admin.login.lower() for admin in admins} | {i.lower() for i in invited})

        key = self.key("org_owners", self.account)
        return await self.cache.get_or_fetch(key, fetch, self.ttl["org_owners"], record=LOGINS)

    async def logins_exist(self, logins: Sequence[str]) -> dict[str, bool | GatewayError]:
        """Whether GitHub has an account per login (any case; data type `users`, one cached
        yes/no per lower-case login, looked up concurrently), or the lookup's error."""

        async def fetch(key: CacheKey) -> bool:
            return await self.api.user(key.ident) is not None

        keys = {login: self.key("users", login.lower()) for login in logins}
        found = await get_or_fetch_many(self.cache, keys.values(), fetch, self.ttl["users"], FLAG)
        answers: dict[str, bool | GatewayError] = {}
        for login, key in keys.items():
            result = found[key]
            answers[login] = result if isinstance(result, GatewayError) else result.value
        return answers

    async def add_owner(self, login: str) -> str:
        """Make `login` an owner of this account's org (GitHub invites a non-member); the
        membership's state. The cached owners are dropped, so the next read sees the change."""
        try:
            return await self.api.set_membership(self.account, login, ADMIN)
        finally:
            await self.cache.invalidate(self.key("org_owners", self.account))

    async def repo_collaborators(self, repos: Sequence[str]) -> dict[str, Result]:
        """Collaborators (login, id, role_name, permissions) per `owner/name`; a malformed name
        is its own BAD_USER_INPUT."""

        async def fetch(key: CacheKey) -> list[GitHubCollaborator]:
            return await self.api.repo_collaborators(key.ident)

        valid, errors = REPO.split(repos)
        keys = [self.key("repo_collaborators", repo) for repo in valid]
        ttl = self.ttl["repo_collaborators"]
        found = await get_or_fetch_many(self.cache, keys, fetch, ttl, COLLABORATORS)
        results: dict[str, Result] = dict(errors)
        results.update((key.ident, found[key]) for key in keys)
        return results

    async def file_text(
        self, repo: str, path: str, ref: str, fresh: bool = False
    ) -> Cached[str | None]:
        """The text of file `path` in `repo`@`ref`, None when GitHub has none (data type
        `files`; `fresh` reads past the cache and caches the answer again); a malformed
        repository, ref or path is BAD_USER_INPUT before any lookup."""
        REPO.check(repo)
        REF.check(ref)
        normalised = "/".join(file_segments(path))
        if not normalised:
            raise BadUserInput(f"{shown(path)} names no file")
        key = self.key("files", f"{repo}@{ref}:{normalised}")
        if fresh:
            await self.cache.invalidate(key)
        return await self.cache.get_or_fetch(
            key,
            lambda: self.api.file_text(repo, normalised, ref),
            self.ttl["files"],
        )

    async def owners(self, repo: str, path: str, ref: str) -> Owners:
        """Approvers and reviewers for `path` in `repo`@`ref`, with the cache lookups made.

        Reads OWNERS in `path` and every parent directory (one cached entry per file, absent
        files cached as empty) and OWNERS_ALIASES at the root. GitHub answers 404 alike for a
        missing file, ref or repository, so when no owner is found the ref is looked up:
        a missing repository or ref is NOT_FOUND, not "no owners". A malformed repository, ref
        or path is BAD_USER_INPUT before any lookup.
        """
        REPO.check(repo)
        REF.check(ref)
        file_segments(path)
        ttl = self.ttl["owners"]
        dirs = {self.key("owners", f"file:{repo}@{ref}:{d}"): d for d in directories(path)}

        async def fetch_owners(key: CacheKey) -> OwnersRecord:
            directory = dirs[key]
            file_path = f"{directory}/OWNERS" if directory else "OWNERS"
            text = await self.api.file_text(repo, file_path, ref)
            return parse_owners(text, f"{repo}@{ref}:{file_path}")

        async def fetch_aliases() -> dict[str, list[str]]:
            text = await self.api.file_text(repo, "OWNERS_ALIASES", ref)
            return parse_aliases(text, f"{repo}@{ref}:OWNERS_ALIASES")

        keys = list(dirs)
        aliases_key = self.key("owners", f"aliases:{repo}@{ref}")
        found, aliases = await asyncio.gather(
            get_or_fetch_many(self.cache, keys, fetch_owners, ttl, OWNERS),
            self.cache.get_or_fetch(aliases_key, fetch_aliases, ttl, record=ALIASES),
        )
        files: list[Cached[OwnersRecord]] = []
        for key in keys:
            result = found[key]
            if isinstance(result, GatewayError):
                raise result
            files.append(result)
        approvers, reviewers = effective_owners([f.value for f in files], aliases.value)
        lookups = [*(f.lookup for f in files), aliases.lookup]
        if not approvers and not reviewers:
            exists = await self.cache.get_or_fetch(
                self.key("owners", f"ref:{repo}@{ref}"),
                lambda: self.api.ref_exists(repo, ref),
                ttl,
                record=FLAG,
            )
            lookups.append(exists.lookup)
            if not exists.value:
                raise NotFound(f"GitHub repository {shown(repo)} or its ref {shown(ref)} not found")
        return Owners(approvers, reviewers, lookups)
