"""Typed async client of the GitHub REST API v3 (no caching; the source adds that)."""

import base64
import binascii
import re
import time
from typing import Any

import httpx
from pydantic import BaseModel, Field

from gateway.errors import BadUserInput, NotFound, UpstreamError
from gateway.source import IdSyntax
from gateway.upstream import UpstreamClient, UpstreamPath, retry_after

API_VERSION = "2022-11-28"
PER_PAGE = 100
MAX_PAGES = 100
SECONDARY_LIMIT_DEFAULT = 60.0
MAX_FILE_BYTES = 1_048_576
REPO = IdSyntax(
    "GitHub repository",
    re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,38}/(?!\.\.?$)[A-Za-z0-9._-]{1,100}"),
    140,
    "owner/name, an owner of up to 39 letters, digits, '-' or '_' and a name of up to 100 "
    "letters, digits, '.', '-' or '_'",
)
REF = IdSyntax(
    "git ref",
    re.compile(r"(?!/)(?!.*(?:\.\.|//|@\{|\.lock$|[/.]$))[^\x00-\x20\x7f~^:?*\[\\]+"),
    255,
    "a branch, tag or commit as git allows it (no spaces, control characters, '..', '~', '^', "
    "':', '?', '*', '[' or '\\')",
)
LOGIN = IdSyntax(
    "GitHub login",
    re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,38}"),
    39,
    "a letter or digit, then letters, digits, '-' or '_'",
)
ADMIN = "admin"
"""The org role of an owner, in member filters, invitations and memberships."""
_FILE_SEGMENT = re.compile(r"[^\x00-\x1f\x7f/]+")


def file_segments(path: str) -> tuple[str, ...]:
    """The directories of a repository path ("/a/b/" → ("a", "b")); BAD_USER_INPUT for `.`,
    `..` or a control character, which name no file of a repository."""
    parts = tuple(part for part in path.split("/") if part)
    for part in parts:
        if part in (".", "..") or not _FILE_SEGMENT.fullmatch(part):
            raise BadUserInput(
                "a repository path names directories: no '.', '..' or control characters"
            )
    return parts


def _owner_name(repo: str) -> tuple[str, str]:
    owner, _, name = REPO.check(repo).partition("/")
    return owner, name


class GitHubUser(BaseModel):
    """An account as GitHub lists it among org members."""

    login: str
    id: int


class GitHubInvitation(BaseModel):
    """A pending org invitation; `login` is None for one sent to an e-mail address."""

    id: int
    login: str | None = None
    role: str = "direct_member"


class GitHubPermissions(BaseModel):
    """What a collaborator may do in a repository."""

    admin: bool = False
    maintain: bool = False
    push: bool = False
    triage: bool = False
    pull: bool = False


class GitHubCollaborator(BaseModel):
    """A repository collaborator with their permissions."""

    login: str
    id: int
    role_name: str = ""
    permissions: GitHubPermissions = Field(default_factory=GitHubPermissions)


def headers(token: str) -> dict[str, str]:
    """The request headers for a GitHub token."""
    return {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": API_VERSION,
    }


def rate_limit_signal(response: httpx.Response) -> float | None:
    """Seconds GitHub asks to wait: primary and secondary limits, on 403 and 429 alike.

    As GitHub documents it: `retry-after` when present; else, with `x-ratelimit-remaining: 0`,
    until `x-ratelimit-reset` (also on a successful answer, so the last token is not overdrawn);
    else a 403/429 whose message names a rate limit waits one minute.
    """
    status = response.status_code
    limited = status == 429 or (status == 403 and _mentions_rate_limit(response))
    if limited and "retry-after" in response.headers:
        return retry_after(response)
    if response.headers.get("x-ratelimit-remaining") == "0":
        try:
            reset = float(response.headers["x-ratelimit-reset"])
        except (KeyError, ValueError):
            return SECONDARY_LIMIT_DEFAULT
        return max(1.0, reset - time.time())
    return SECONDARY_LIMIT_DEFAULT if limited else None


def _mentions_rate_limit(response: httpx.Response) -> bool:
    try:
        message = str(response.json().get("message", ""))
    except (ValueError, AttributeError):
        return False
    return "rate limit" in message.lower()


class GitHubApi:
    """Org members, repository collaborators and file contents of one GitHub account."""

    def __init__(self, client: UpstreamClient) -> None:
        self.client = client

    async def org_members(self, org: str) -> list[GitHubUser]:
        """Every member of `org`, all pages."""
        path = UpstreamPath("/orgs/{}/members", org)
        items = await self._pages("orgs.members", path, f"org {org}")
        return [GitHubUser.model_validate(item) for item in items]

    async def org_admins(self, org: str) -> list[GitHubUser]:
        """Every member of `org` with the admin (owner) role, all pages."""
        path = UpstreamPath("/orgs/{}/members", org)
        items = await self._pages("orgs.members", path, f"org {org}", {"role": ADMIN})
        return [GitHubUser.model_validate(item) for item in items]

    async def org_invitations(self, org: str) -> list[GitHubInvitation]:
        """Every pending invitation of `org`, all pages."""
        path = UpstreamPath("/orgs/{}/invitations", org)
        items = await self._pages("orgs.invitations", path, f"org {org}")
        return [GitHubInvitation.model_validate(item) for item in items]

    async def user(self, login: str) -> GitHubUser | None:
        """The account `login` (checked with LOGIN first), or None when GitHub has none."""
        try:
            path = UpstreamPath("/users/{}", LOGIN.check(login))
            response = await self.client.request("users.get", "GET", path)
        except UpstreamError as error:
            if error.extensions.get("status") == 404:
                return None
            raise
        return GitHubUser.model_validate(response.json())

    async def set_membership(self, org: str, login: str, role: str) -> str:
        """Make `login` a member of `org` with `role`; the membership's state as GitHub answers
        it: `active`, or `pending` when GitHub sent an invitation (the user was no member)."""
        path = UpstreamPath("/orgs/{}/memberships/{}", org, LOGIN.check(login))
        response = await self.client.request(
            "orgs.memberships.set", "PUT", path, json={"role": role}, idempotent=True
        )
        body = response.json()
        state = body.get("state") if isinstance(body, dict) else None
        return state if isinstance(state, str) else "unknown"

    async def repo_collaborators(self, repo: str) -> list[GitHubCollaborator]:
        """Every collaborator of `owner/name`, all pages."""
        path = UpstreamPath("/repos/{}/{}/collaborators", *_owner_name(repo))
        items = await self._pages("repos.collaborators", path, f"repository {repo}")
        return [GitHubCollaborator.model_validate(item) for item in items]

    async def ref_exists(self, repo: str, ref: str) -> bool:
        """True when `owner/name` exists and has commit, branch or tag `ref`."""
        try:
            path = UpstreamPath("/repos/{}/{}/commits/{}", *_owner_name(repo), REF.check(ref))
            await self.client.request("repos.commit", "GET", path)
        except UpstreamError as error:
            if error.extensions.get("status") in (404, 422):
                return False
            raise
        return True

    async def file_text(self, repo: str, path: str, ref: str) -> str | None:
        """The text of file `path` in `owner/name` at `ref`, or None when there is none.

        GitHub answers 404 alike for a missing file, ref or repository: all read as no file.
        """
        where = UpstreamPath("/repos/{}/{}/contents/{}", *_owner_name(repo), file_segments(path))
        try:
            response = await self.client.request(
                "repos.contents", "GET", where, params={"ref": REF.check(ref)}
            )
        except UpstreamError as error:
            if error.extensions.get("status") == 404:
                return None
            raise
        body = response.json()
        if not isinstance(body, dict) or body.get("type") != "file":
            return None
        size = body.get("size", 0)
        if not isinstance(size, int) or size > MAX_FILE_BYTES or body.get("encoding") == "none":
            raise UpstreamError(f"GitHub file {path} in {repo}@{ref} is larger than 1 MiB")
        try:
            return base64.b64decode(body.get("content", ""), validate=False).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise UpstreamError(
                f"GitHub file {path} in {repo}@{ref} is not UTF-8 text in base64"
            ) from None

    async def _pages(
        self,
        operation: str,
        path: UpstreamPath,
        what: str,
        filters: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """All items of a list endpoint, following `Link: <...>; rel="next"` headers; `filters`
        go with the first request (the next-page links carry them on)."""
        items: list[dict[str, Any]] = []
        url: UpstreamPath | None = path
        params: dict[str, str | list[str]] | None = {"per_page": str(PER_PAGE), **(filters or {})}
        pages = 0
        while url is not None:
            if pages == MAX_PAGES:
                raise UpstreamError(f"GitHub {what}: more than {MAX_PAGES} pages")
            try:
                response = await self.client.request(operation, "GET", url, params=params)
            except UpstreamError as error:
                if error.extensions.get("status") == 404:
                    raise NotFound(
                        f"GitHub {what} not found for account {self.client.account.name!r}"
                    ) from None
                raise
            page = response.json()
            if not isinstance(page, list):
                raise UpstreamError(f"GitHub {operation} answered something other than a list")
            items.extend(page)
            url, params, pages = self._next(response), None, pages + 1
        return items

    def _next(self, response: httpx.Response) -> UpstreamPath | None:
        """The next page's URL, refused unless it stays on this account's API."""
        following = response.links.get("next", {}).get("url")
        if following is None:
            return None
        return UpstreamPath.link(following, self.client.account.base_url)
