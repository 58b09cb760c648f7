"""Cached, rate-limited GitLab data: repository files, OWNERS, refs and project members."""

from collections.abc import Sequence

from pydantic import TypeAdapter

from gateway.cache import FLAG, TEXT, Cached, CacheKey, get_or_fetch_many
from gateway.errors import GatewayError, NotFound, shown
from gateway.ratelimit import BucketSpec
from gateway.source import AccountSource
from resolvers.github.api import REF
from resolvers.github.owners import directories, effective_owners, parse_aliases, parse_owners
from resolvers.github.source import Owners
from resolvers.gitlab.api import PROJECT, GitLabApi, GitLabMember, file_path

SYSTEM = "gitlab"
TIER = "api"
RATE_LIMIT = BucketSpec.within(2000, 60, burst=20)
"""GitLab.com's documented limit for authenticated API traffic: 2,000 requests a minute per
user. Self-managed instances set their own; an account's `rate_limit` setting replaces it."""
DEFAULT_TTL = {
    "files": 43_200.0,
    "refs": 43_200.0,
    "project_members": 1800.0,
}

_MEMBERS = TypeAdapter(list[GitLabMember])


class GitLabSource(AccountSource[GitLabApi]):
    """One GitLab instance (its API URL and token) through the shared cache and rate budget.

    The account is chosen by name: account `name` == app-interface's `GitlabInstance_v1.name`,
    and a repository URL's host picks the instance. Projects are numeric ids or full paths.
    """

    system = SYSTEM
    default_ttl = DEFAULT_TTL

    async def file_text(
        self, project: str, path: str, ref: str, fresh: bool = False
    ) -> Cached[str | None]:
        """The text of `path` in `project`@`ref`, None when GitLab has no such file; `fresh`
        reads it from GitLab (and caches it again) rather than from the cache."""
        if fresh:
            PROJECT.check(project)
            REF.check(ref)
            await self.cache.invalidate(self.key("files", f"{project}@{ref}:{file_path(path)}"))
        found = await self.files_text(project, [path], ref)
        return found[file_path(path)]

    async def files_text(
        self, project: str, paths: Sequence[str], ref: str
    ) -> dict[str, Cached[str | None]]:
        """The text of each of `paths` in `project`@`ref` by normalised path (one cached entry
        per file, a missing file cached as None). A malformed project, ref or path is
        BAD_USER_INPUT before any lookup; an upstream failure of any file is raised."""
        PROJECT.check(project)
        REF.check(ref)
        normalised = [file_path(p) for p in paths]
        keys = {self.key("files", f"{project}@{ref}:{p}"): p for p in normalised}

        async def fetch(key: CacheKey) -> str | None:
            return await self.api.file_text(project, keys[key], ref)

        found = await get_or_fetch_many(self.cache, keys, fetch, self.ttl["files"], TEXT)
        texts: dict[str, Cached[str | None]] = {}
        for key, path in keys.items():
            result = found[key]
            if isinstance(result, GatewayError):
                raise result
            texts[path] = result
        return texts

    async def ref_exists(self, project: str, ref: str) -> Cached[bool]:
        """Whether `project` exists and has commit, branch or tag `ref`."""
        PROJECT.check(project)
        REF.check(ref)
        return await self.cache.get_or_fetch(
            self.key("refs", f"{project}@{ref}"),
            lambda: self.api.ref_exists(project, ref),
            self.ttl["refs"],
            record=FLAG,
        )

    async def owners(self, project: str, path: str, ref: str) -> Owners:
        """Approvers and reviewers for `path` in `project`@`ref`, with the cache lookups made.

        OWNERS in `path` and every parent directory and OWNERS_ALIASES at the root, read as
        GitHub's are (see `resolvers.github.owners`). When no owner is found the ref is looked
        up, so a missing project or ref is NOT_FOUND rather than "no owners".
        """
        owners_files = [f"{d}/OWNERS" if d else "OWNERS" for d in directories(path)]
        texts = await self.files_text(project, [*owners_files, "OWNERS_ALIASES"], ref)
        where = f"{project}@{ref}"
        records = [parse_owners(texts[f].value, f"{where}:{f}") for f in owners_files]
        aliases = parse_aliases(texts["OWNERS_ALIASES"].value, f"{where}:OWNERS_ALIASES")
        approvers, reviewers = effective_owners(records, aliases)
        lookups = [text.lookup for text in texts.values()]
        if not approvers and not reviewers:
            exists = await self.ref_exists(project, ref)
            lookups.append(exists.lookup)
            if not exists.value:
                raise NotFound(f"GitLab project {shown(project)} or its ref {shown(ref)} not found")
        return Owners(approvers, reviewers, lookups)

    async def project_members(self, project: str) -> Cached[list[GitLabMember]]:
        """Members of `project`, inherited ones included; NOT_FOUND for an unknown project."""

        async def fetch() -> list[GitLabMember]:
            return await self.api.project_members(project)

        key = self.key("project_members", PROJECT.check(project))
        ttl = self.ttl["project_members"]
        return await self.cache.get_or_fetch(key, fetch, ttl, record=_MEMBERS)
