"""GitHub types and root fields: `github_org_members_v1`, `github_repo_collaborators_v1`."""

import asyncio
from collections.abc import Awaitable

import strawberry
from strawberry.types import Info

from gateway.errors import BadUserInput, GatewayError, NotFound, shown
from resolvers.github.api import GitHubCollaborator as CollaboratorRecord
from resolvers.github.source import GitHubSource
from schema.cached_subtrees import cached_item, made
from schema.context import RequestContext
from schema.inputs import bounded
from schema.loaders import Loaded, items, keyed_loader, unwrap


@strawberry.federation.type(name="GitHubUser_v1", keys=["login"])
class GitHubUser:
    """A GitHub account; `id` is GitHub's numeric id as a string (it outgrows GraphQL Int)."""

    login: str
    id: str

    @classmethod
    async def resolve_reference(cls, info: Info[RequestContext, None], login: str) -> "GitHubUser":
        """The entity `login` (any case): a member of a configured org, else NOT_FOUND.

        Each org's member list is read once per request, whatever the number of logins.
        """
        failure: GatewayError | None = None
        for org in sorted(info.context.sources.of(GitHubSource)):
            try:
                members = await _org_members(info, org)
            except GatewayError as error:
                failure = failure or error
                continue
            if login.lower() in members:
                return members[login.lower()]
        raise failure or NotFound(f"GitHub user {login!r} is not a member of a configured org")


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


async def _org_members(info: Info[RequestContext, None], org: str) -> dict[str, GitHubUser]:
    """Members of `org` by lower-case login, read once per request."""

    async def load() -> dict[str, GitHubUser]:
        members = made(await github_org_members(info, org))
        return {member.login.lower(): member for member in members}

    task: asyncio.Future[dict[str, GitHubUser]] = info.context.per_request(
        f"github/{org}/org_members", lambda: asyncio.ensure_future(load())
    )
    return await task


async def github_org_members(info: Info[RequestContext, None], org: str) -> list[GitHubUser]:
    """Resolve `github_org_members_v1` with the account named `org`."""
    cached = await info.context.sources.get(GitHubSource, org).org_members(org)
    members = unwrap(info, cached)
    return cached_item(
        cached, org, lambda: [GitHubUser(login=m.login, id=str(m.id)) for m in members]
    )


def _collaborator(record: CollaboratorRecord) -> GitHubCollaborator:
    granted = record.permissions
    return GitHubCollaborator(
        login=record.login,
        id=str(record.id),
        role_name=record.role_name,
        permissions=GitHubPermissions(
            admin=granted.admin,
            maintain=granted.maintain,
            push=granted.push,
            triage=granted.triage,
            pull=granted.pull,
        ),
    )


async def github_repo_collaborators(
    info: Info[RequestContext, None], repos: list[str]
) -> list[GitHubRepo | None]:
    """Resolve `github_repo_collaborators_v1`: each repo through the account named its owner.

    A malformed name, an unknown owner or a missing repository is a null item with its error.
    """
    pending: list[Awaitable[Loaded[list[CollaboratorRecord]]] | GatewayError] = []
    for repo in repos:
        try:
            owner, _ = split_repo(repo)
            source = info.context.sources.get(GitHubSource, owner)
        except GatewayError as error:
            pending.append(error)
            continue
        name = f"github/{owner}/repo_collaborators"
        pending.append(keyed_loader(info, name, source.repo_collaborators).load(repo))
    results = [w if isinstance(w, GatewayError) else (await w).result for w in pending]
    return items(
        info,
        zip(repos, results, strict=True),
        lambda repo, found: GitHubRepo(name=repo, collaborators=[_collaborator(r) for r in found]),
    )


@strawberry.type
class GitHubQuery:
    """GitHub root fields (joined into Query by the system registry)."""

    github_org_members_v1: list[GitHubUser] = strawberry.field(
        resolver=github_org_members,
        extensions=bounded("read"),
        description="Members of GitHub `org` (read with the account named `org`), cached",
    )

    github_repo_collaborators_v1: list[GitHubRepo | None] = strawberry.field(
        resolver=github_repo_collaborators,
        extensions=bounded("read"),
        description="Collaborators of `owner/name` repositories (account named `owner`), cached",
    )
