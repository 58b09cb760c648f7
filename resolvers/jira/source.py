"""Cached, rate-limited Jira data: issues by key or JQL, and projects."""

from collections.abc import Sequence

from pydantic import TypeAdapter

from gateway.cache import Cached, CacheKey, get_or_fetch_batch
from gateway.errors import GatewayError, NotFound
from gateway.source import AccountSource
from resolvers.jira.api import ISSUE_KEY, PROJECT_KEY, JiraApi, JiraIssue, JiraProject

SYSTEM = "jira"
DEFAULT_TTL = {"issues": 60.0, "projects": 3600.0}
ALL_PROJECTS = "all"

ISSUE = TypeAdapter(JiraIssue)
ISSUES = TypeAdapter(list[JiraIssue])
PROJECT = TypeAdapter(JiraProject)
PROJECTS = TypeAdapter(list[JiraProject])
IssueResult = Cached[JiraIssue] | GatewayError
ProjectResult = Cached[JiraProject] | GatewayError


class JiraSource(AccountSource[JiraApi]):
    """One Jira instance through the shared cache and its ≈1 request/s budget."""

    system = SYSTEM
    default_ttl = DEFAULT_TTL

    async def issues_by_key(self, keys: Sequence[str]) -> dict[str, IssueResult]:
        """Each issue by key (case-insensitive); missing keys fetched in one bulk call; a
        malformed key is its own BAD_USER_INPUT."""
        valid, errors = ISSUE_KEY.split(keys)
        by_key = {self.key("issues", f"key:{key.upper()}"): key.upper() for key in valid}

        async def fetch(missing: list[CacheKey]) -> dict[CacheKey, JiraIssue | GatewayError]:
            found = await self.api.issues([by_key[key] for key in missing])
            return {
                key: found[by_key[key]]
                if by_key[key] in found
                else NotFound(f"Jira issue {by_key[key]} not found in {self.account!r}")
                for key in missing
            }

        found = await get_or_fetch_batch(self.cache, by_key, fetch, self.ttl["issues"], ISSUE)
        results: dict[str, IssueResult] = dict(errors)
        results.update((key, found[self.key("issues", f"key:{key.upper()}")]) for key in valid)
        return results

    async def issues_by_jql(self, jql: str) -> Cached[list[JiraIssue]]:
        """The issues a JQL search returns, cached per query text."""

        async def fetch() -> list[JiraIssue]:
            return await self.api.search(jql)

        key = self.key("issues", f"jql:{jql}")
        return await self.cache.get_or_fetch(key, fetch, self.ttl["issues"], record=ISSUES)

    async def projects_by_key(self, keys: Sequence[str]) -> dict[str, ProjectResult]:
        """Each project by key; missing keys fetched in one search; a malformed key is its own
        BAD_USER_INPUT."""
        valid, errors = PROJECT_KEY.split(keys)
        by_key = {self.key("projects", f"key:{key.upper()}"): key.upper() for key in valid}

        async def fetch(missing: list[CacheKey]) -> dict[CacheKey, JiraProject | GatewayError]:
            found = {
                p.key.upper(): p for p in await self.api.projects([by_key[key] for key in missing])
            }
            return {
                key: found.get(by_key[key])
                or NotFound(f"Jira project {by_key[key]} not found in {self.account!r}")
                for key in missing
            }

        found = await get_or_fetch_batch(self.cache, by_key, fetch, self.ttl["projects"], PROJECT)
        results: dict[str, ProjectResult] = dict(errors)
        results.update((key, found[self.key("projects", f"key:{key.upper()}")]) for key in valid)
        return results

    async def all_projects(self) -> Cached[list[JiraProject]]:
        """Every project the token can see."""

        async def fetch() -> list[JiraProject]:
            return await self.api.projects(None)

        key = self.key("projects", ALL_PROJECTS)
        return await self.cache.get_or_fetch(key, fetch, self.ttl["projects"], record=PROJECTS)
