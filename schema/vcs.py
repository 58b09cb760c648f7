"""VCS: `vcs_owners_v1` and `vcs_file_v1`, on whichever system hosts the repository URL."""

from typing import Protocol

import strawberry
from strawberry.types import Info

from gateway.cache import Cached
from gateway.errors import NotFound, shown
from gateway.registry import repo_of_url
from resolvers.github.source import Owners
from schema.context import RequestContext
from schema.inputs import bounded
from schema.provenance import record


class RepositorySource(Protocol):
    """What a system hosting repositories offers the `vcs_*` fields (GitHub, GitLab)."""

    async def owners(self, repo: str, path: str, ref: str) -> Owners:
        """Approvers and reviewers of `path` in `repo`@`ref`."""

    async def file_text(
        self, repo: str, path: str, ref: str, fresh: bool = False
    ) -> Cached[str | None]:
        """The text of `path` in `repo`@`ref`, None when there is no such file; `fresh` reads
        past the cache."""


@strawberry.federation.type(name="VcsOwners_v1", keys=["repo_url path ref"])
class VcsOwners:
    """Who approves and reviews changes under `path` of a repository at `ref`."""

    repo_url: str
    path: str
    ref: str
    provider: str = strawberry.field(description="the system hosting it: `github` or `gitlab`")
    approvers: list[str]
    reviewers: list[str]

    @classmethod
    async def resolve_reference(
        cls, info: Info[RequestContext, None], repo_url: str, path: str, ref: str
    ) -> "VcsOwners":
        """The entity `repo_url path ref`: OWNERS files shared through the cache."""
        return await vcs_owners(info, repo_url, path, ref)


@strawberry.type(name="VcsFile_v1")
class VcsFile:
    """The text of one file of a repository at `ref` (UTF-8, at most 1 MiB)."""

    repo_url: str
    path: str
    ref: str
    provider: str = strawberry.field(description="the system hosting it: `github` or `gitlab`")
    text: str


def _repository(
    info: Info[RequestContext, None], repo_url: str
) -> tuple[str, str, RepositorySource]:
    """(provider, repository, source) for `repo_url`, chosen by its host (and owner)."""
    host, repo = repo_of_url(repo_url)
    provider, source = info.context.sources.repository_source(host, repo.partition("/")[0])
    return provider, repo, source


async def vcs_owners(
    info: Info[RequestContext, None],
    repo_url: str,
    path: str = "/",
    ref: str = "master",
) -> VcsOwners:
    """Resolve `vcs_owners_v1` through the account serving the repository URL's host.

    OWNERS of parent directories are inherited (Kubernetes convention) until one sets
    `options: no_parent_owners: true`; names listed in the root OWNERS_ALIASES are expanded.
    """
    provider, repo, source = _repository(info, repo_url)
    owners = await source.owners(repo, path, ref)
    for lookup in owners.lookups:
        record(info, lookup)
    return VcsOwners(
        repo_url=repo_url,
        path=path,
        ref=ref,
        provider=provider,
        approvers=owners.approvers,
        reviewers=owners.reviewers,
    )


async def vcs_file(
    info: Info[RequestContext, None], repo_url: str, path: str, ref: str, fresh: bool = False
) -> VcsFile:
    """Resolve `vcs_file_v1`: NOT_FOUND when the repository, ref or file does not exist;
    `fresh` reads the file from the upstream even when it is cached (and caches it again),
    for a caller about to write the file; dropping the cached copy is a cache write, so the
    result cache never reuses such an answer."""
    provider, repo, source = _repository(info, repo_url)
    found = await source.file_text(repo, path, ref, fresh)
    record(info, found.lookup)
    if found.value is None:
        raise NotFound(f"no file {shown(path)} in {shown(repo)}@{shown(ref)}")
    return VcsFile(repo_url=repo_url, path=path, ref=ref, provider=provider, text=found.value)


VCS_FIELDS = frozenset({"vcs_owners_v1", "vcs_file_v1"})
"""The VcsQuery fields, all served from the shared cache."""


@strawberry.type
class VcsQuery:
    """VCS root fields, for every system that declares `repositories` (GitHub, GitLab)."""

    vcs_owners_v1: VcsOwners = strawberry.field(
        resolver=vcs_owners,
        extensions=bounded("read"),
        description="Approvers and reviewers of `path` from OWNERS files (GitHub or GitLab, "
        "by the URL's host), cached",
    )
    vcs_file_v1: VcsFile = strawberry.field(
        resolver=vcs_file,
        extensions=bounded("read"),
        description="The text of the file at `path` of a repository at `ref` (GitHub or "
        "GitLab, by the URL's host), cached; `fresh: true` reads it past the cache (before "
        "changing the file)",
    )
