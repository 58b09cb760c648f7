"""GitHub types and root fields: `github_org_members_v1`, `github_repo_collaborators_v1`."""

from collections.abc import Awaitable
from typing import Any

import strawberry
from strawberry.types import Info

from gateway.errors import BadUserInput, GatewayError, shown
from schema.context import RequestContext
from schema.loaders import Loaded, keyed_loader, unwrap


@strawberry.type(name="GitHubUser_v1")
class GitHubUser:
    """A GitHub account; `id` is GitHub's numeric id as a string (it outgrows GraphQL Int)."""

    login: str
    id: str


@strawberry.type(name="GitHubPermissions_v1")
class GitHubPermissions:
    """What a collaborator may do in a repository."""

    admin: bool
    maintain: bool
    push: bool
    triage: bool
    pull: bool


@strawberry.type(name="GitHubCollaborator_v1")
class GitHubCollaborator:
    """A repository collaborator with their role and permissions."""

    login: str
    id: str
    role_name: str
    permissions: GitHubPermissions


@strawberry.type(name="GitHubRepo_v1")
class GitHubRepo:
    """A repository (`owner/name`) and its collaborators."""

    name: str
    collaborators: list[GitHubCollaborator]


def split_repo(repo: str) -> tuple[str, str]:
    """(owner, name) of `owner/name`, or BAD_USER_INPUT."""
    owner, _, name = repo.partition("/")
    if not owner or not name or "/" in name:
        raise BadUserInput(f"repository {shown(repo)} is not of the form owner/name")
    return owner, name


async def github_org_members(info: Info[RequestContext, None], org: str) -> list[GitHubUser]:
    """Resolve `github_org_members_v1` with the account named `org`."""
    cached = await info.context.sources.github_org(org).org_members(org)
    members = unwrap(info, cached)
    return [GitHubUser(login=m["login"], id=str(m["id"])) for m in members]


def _collaborator(record: dict[str, Any]) -> GitHubCollaborator:
    return GitHubCollaborator(
        login=record["login"],
        id=str(record["id"]),
        role_name=record["role_name"],
        permissions=GitHubPermissions(**record["permissions"]),
    )


async def github_repo_collaborators(
    info: Info[RequestContext, None], repos: list[str]
) -> list[GitHubRepo | None]:
    """Resolve `github_repo_collaborators_v1`: each repo through the account named its owner.

    A malformed name, an unknown owner or a missing repository is a null item with its error.
    """
    pending: list[Awaitable[Loaded[list[dict[str, Any]]]] | GatewayError] = []
    for repo in repos:
        try:
            owner, _ = split_repo(repo)
            source = info.context.sources.github_org(owner)
        except GatewayError as error:
            pending.append(error)
            continue
        name = f"github/{owner}/repo_collaborators"
        pending.append(keyed_loader(info, name, source.repo_collaborators).load(repo))
    items: list[Any] = []
    for repo, waiting in zip(repos, pending, strict=True):
        try:
            if isinstance(waiting, GatewayError):
                raise waiting
            records = unwrap(info, (await waiting).result)
            items.append(GitHubRepo(name=repo, collaborators=[_collaborator(r) for r in records]))
        except GatewayError as error:
            items.append(error)
    return items
