"""VCS OWNERS: `vcs_owners_v1`, approvers and reviewers of a path from OWNERS files."""

from urllib.parse import urlsplit

import strawberry
from strawberry.types import Info

from gateway.errors import BadUserInput, shown
from schema.context import RequestContext
from schema.provenance import record


@strawberry.federation.type(name="VcsOwners_v1", keys=["repo_url path ref"])
class VcsOwners:
    """Who approves and reviews changes under `path` of a repository at `ref`."""

    repo_url: str
    path: str
    ref: str
    approvers: list[str]
    reviewers: list[str]

    @classmethod
    async def resolve_reference(
        cls, info: Info[RequestContext, None], repo_url: str, path: str, ref: str
    ) -> "VcsOwners":
        """The entity `repo_url path ref`: OWNERS files shared through the cache."""
        return await vcs_owners(info, repo_url, path, ref)


def repo_of_url(repo_url: str) -> tuple[str, str]:
    """(owner, name) of `https://host/owner/name[.git]`, or BAD_USER_INPUT."""
    parts = urlsplit(repo_url)
    segments = [s for s in parts.path.split("/") if s]
    if parts.scheme not in ("http", "https") or not parts.netloc or len(segments) != 2:
        raise BadUserInput(
            f"{shown(repo_url)} is not a repository URL like https://host/owner/name"
        )
    return segments[0], segments[1].removesuffix(".git")


async def vcs_owners(
    info: Info[RequestContext, None],
    repo_url: str,
    path: str = "/",
    ref: str = "master",
) -> VcsOwners:
    """Resolve `vcs_owners_v1` through the GitHub account named after the repository's owner.

    OWNERS of parent directories are inherited (Kubernetes convention) until one sets
    `options: no_parent_owners: true`; names listed in the root OWNERS_ALIASES are expanded.
    """
    owner, name = repo_of_url(repo_url)
    source = info.context.sources.github_org(owner)
    owners = await source.owners(f"{owner}/{name}", path, ref)
    for lookup in owners.lookups:
        record(info, lookup)
    return VcsOwners(
        repo_url=repo_url,
        path=path,
        ref=ref,
        approvers=owners.approvers,
        reviewers=owners.reviewers,
    )
