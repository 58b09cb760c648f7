"""GitHub, declared to the system registry: accounts named by org, limit, TTLs and fields."""

from collections.abc import Mapping

import httpx

from gateway.ratelimit import BucketSpec
from gateway.registry import Repositories, Sources, System, SystemSchema
from gateway.runtime import Runtime
from gateway.settings import UpstreamAccountSettings
from gateway.tasks.kinds import TaskFunction
from gateway.upstream import UpstreamClient
from resolvers.github import api
from resolvers.github.reconcile import TASK_KIND, GitHubOwnersReconcile
from resolvers.github.source import GitHubSource
from schema.github import GitHubQuery
from schema.github_owners_reconcile import TYPES, GitHubOwnersMutation, reconcile_result
from schema.vcs import VCS_FIELDS, VcsQuery

RATE_LIMIT = BucketSpec.within(5000, 3600, burst=50)
"""GitHub's primary limit for a token: 5,000 requests an hour."""


def headers(token: str | None, account: UpstreamAccountSettings) -> dict[str, str]:
    """A GitHub token."""
    return api.headers(token or "")


def rate_limit_signal(response: httpx.Response) -> float | None:
    """GitHub's primary and secondary limits (see `resolvers.github.api.rate_limit_signal`)."""
    return api.rate_limit_signal(response)


def source(
    account: UpstreamAccountSettings, client: UpstreamClient, runtime: Runtime
) -> GitHubSource:
    """One GitHub account; its name is the org it reads."""
    return GitHubSource(account.name, api.GitHubApi(client), runtime.cache, account.ttl)


def task_kinds(sources: Sources, runtime: Runtime) -> Mapping[str, TaskFunction]:
    """`github-owners.reconcile`, on the process's shared sources."""
    return {TASK_KIND: GitHubOwnersReconcile(sources, runtime.events.publisher).task}


SYSTEM = System(
    name="github",
    account_noun="GitHub org",
    settings=UpstreamAccountSettings,
    source_type=GitHubSource,
    source=source,
    headers=headers,
    rate_limit=RATE_LIMIT,
    tier="rest",
    ttl=GitHubSource.default_ttl,
    rate_limit_signal=rate_limit_signal,
    graphql=SystemSchema(
        queries=(GitHubQuery, VcsQuery),
        mutations=(GitHubOwnersMutation,),
        cache_backed=frozenset({"github_org_members_v1", "github_repo_collaborators_v1"})
        | VCS_FIELDS,
        types=TYPES,
        results={TASK_KIND: reconcile_result},
    ),
    repositories=Repositories(host=lambda account: "github.com", by_owner=True),
    task_kinds=task_kinds,
)
