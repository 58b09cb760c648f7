"""GitLab, declared to the system registry: instances named as app-interface's
`GitlabInstance_v1.name`, whose repository URLs are on the host of their `api_url`."""

from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

from gateway.registry import Repositories, Sources, System, SystemSchema
from gateway.runtime import Runtime
from gateway.settings import UpstreamAccountSettings
from gateway.tasks.kinds import TaskFunction
from gateway.upstream import UpstreamClient
from resolvers.gitlab import api
from resolvers.gitlab.file_sync import TASK_KIND, FileSyncTask
from resolvers.gitlab.source import RATE_LIMIT, TIER, GitLabSource
from resolvers.gitlab.source import SYSTEM as NAME
from schema.vcs import VCS_FIELDS, VcsQuery
from schema.vcs_file_sync import TYPES, VcsFileSyncMutation, file_sync_result


def headers(token: str | None, account: UpstreamAccountSettings) -> dict[str, str]:
    """A personal, project or group access token."""
    return api.headers(token or "")


def rate_limit_signal(response: httpx.Response) -> float | None:
    """GitLab's 429 and `RateLimit-*` headers (see `resolvers.gitlab.api.rate_limit_signal`)."""
    return api.rate_limit_signal(response)


def host(account: UpstreamAccountSettings) -> str:
    """The host (and port) of the instance: `api_url` is its URL + `/api/v4`."""
    return urlsplit(account.api_url).netloc.rpartition("@")[2]


def source(
    account: UpstreamAccountSettings, client: UpstreamClient, runtime: Runtime
) -> GitLabSource:
    """One GitLab instance."""
    return GitLabSource(account.name, api.GitLabApi(client), runtime.cache, account.ttl)


def task_kinds(sources: Sources, runtime: Runtime) -> Mapping[str, TaskFunction]:
    """`vcs.file-sync`, on the process's shared sources."""
    return {TASK_KIND: FileSyncTask(sources, runtime.events.publisher).task}


SYSTEM = System(
    name=NAME,
    account_noun="GitLab instance",
    settings=UpstreamAccountSettings,
    source_type=GitLabSource,
    source=source,
    headers=headers,
    rate_limit=RATE_LIMIT,
    tier=TIER,
    ttl=GitLabSource.default_ttl,
    rate_limit_signal=rate_limit_signal,
    graphql=SystemSchema(
        queries=(VcsQuery,),
        mutations=(VcsFileSyncMutation,),
        cache_backed=VCS_FIELDS,
        types=TYPES,
        results={TASK_KIND: file_sync_result},
    ),
    repositories=Repositories(host=host),
    task_kinds=task_kinds,
)
