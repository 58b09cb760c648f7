"""Typed async client of the GitLab REST API v4 (no caching; the source adds that)."""

import re
import time
from typing import Any

import httpx
from pydantic import BaseModel

from gateway.errors import BadUserInput, NotFound, UpstreamError, shown
from gateway.source import IdSyntax
from gateway.upstream import UpstreamClient, UpstreamPath, retry_after
from resolvers.github.api import REF, file_segments

PER_PAGE = 100
MAX_PAGES = 100
MAX_FILE_BYTES = 1_048_576
MAX_FILE_PATH = 1024
RATE_LIMIT_DEFAULT = 60.0
PROJECT = IdSyntax(
    "GitLab project",
    re.compile(
        r"[1-9][0-9]{0,18}"
        r"|(?:[A-Za-z0-9_][A-Za-z0-9_.-]*/){1,20}(?!.*\.(?:git|atom)$)[A-Za-z0-9_][A-Za-z0-9_.-]*"
    ),
    512,
    "a numeric project id or a full path `group/[subgroup/...]project` of letters, digits, "
    "'_', '.' or '-' (a segment starting with a letter, digit or '_', the last not ending in "
    "'.git' or '.atom')",
)


def file_path(path: str) -> str:
    """`path` as GitLab names a file ("/a//b" → "a/b"); BAD_USER_INPUT for `.`, `..`, control
    characters, no name at all, or more than MAX_FILE_PATH characters."""
    if len(path) > MAX_FILE_PATH:
        raise BadUserInput(f"a repository file path has at most {MAX_FILE_PATH} characters")
    segments = file_segments(path)
    if not segments:
        raise BadUserInput(f"{shown(path)} names no file")
    return "/".join(segments)


class GitLabMember(BaseModel):
    """A project member, direct or inherited from its groups, as `members/all` lists them."""

    id: int
    username: str
    name: str = ""
    state: str = ""
    access_level: int = 0


def headers(token: str) -> dict[str, str]:
    """The request headers for a GitLab personal, project or group access token."""
    return {"PRIVATE-TOKEN": token, "Accept": "application/json"}


def rate_limit_signal(response: httpx.Response) -> float | None:
    """Seconds GitLab asks to wait: a 429's `Retry-After` (else until `RateLimit-Reset`, else a
    minute), and `RateLimit-Remaining: 0` on any answer, so the last request is not overdrawn."""
    reset = _reset_in(response)
    if response.status_code == 429:
        if "retry-after" in response.headers:
            return retry_after(response)
        return reset if reset is not None else RATE_LIMIT_DEFAULT
    if response.headers.get("ratelimit-remaining") == "0":
        return reset if reset is not None else RATE_LIMIT_DEFAULT
    return None


def _reset_in(response: httpx.Response) -> float | None:
    try:
        return max(1.0, float(response.headers["ratelimit-reset"]) - time.time())
    except (KeyError, ValueError):
        return None


class GitLabApi:
    """Files, refs and members of the projects one GitLab instance's token can read."""

    def __init__(self, client: UpstreamClient) -> None:
        self.client = client

    async def file_text(self, project: str, path: str, ref: str) -> str | None:
        """The text of file `path` in `project` at `ref`, or None when there is none.

        Reads `GET /projects/:id/repository/files/:file_path/raw?ref=`, the endpoint
        qontract-reconcile reads OWNERS with; a 404 (missing file, ref or project) is None.
        """
        where = UpstreamPath(
            "/projects/{}/repository/files/{}/raw", PROJECT.check(project), file_path(path)
        )
        try:
            response = await self.client.request(
                "repository.files.raw", "GET", where, params={"ref": REF.check(ref)}
            )
        except UpstreamError as error:
            if error.extensions.get("status") == 404:
                return None
            raise
        named = f"GitLab file {shown(path)} in {project}@{shown(ref)}"
        if len(response.content) > MAX_FILE_BYTES:
            raise UpstreamError(f"{named} is larger than {MAX_FILE_BYTES} bytes")
        try:
            return response.content.decode()
        except UnicodeDecodeError:
            raise UpstreamError(f"{named} is not UTF-8 text") from None

    async def ref_exists(self, project: str, ref: str) -> bool:
        """True when `project` exists and has commit, branch or tag `ref`."""
        where = UpstreamPath(
            "/projects/{}/repository/commits/{}", PROJECT.check(project), REF.check(ref)
        )
        try:
            await self.client.request("repository.commits.get", "GET", where)
        except UpstreamError as error:
            if error.extensions.get("status") == 404:
                return False
            raise
        return True

    async def project_members(self, project: str) -> list[GitLabMember]:
        """Every member of `project`, inherited ones included, all pages."""
        path = UpstreamPath("/projects/{}/members/all", PROJECT.check(project))
        items = await self._pages("projects.members.all", path, f"project {project}")
        return [GitLabMember.model_validate(item) for item in items]

    async def _pages(self, operation: str, path: UpstreamPath, what: str) -> list[dict[str, Any]]:
        """All items of a list endpoint, page after page as `X-Next-Page` names them."""
        items: list[dict[str, Any]] = []
        page: int | None = 1
        while page is not None:
            if page > MAX_PAGES:
                raise UpstreamError(f"GitLab {what}: more than {MAX_PAGES} pages")
            params = {"per_page": str(PER_PAGE), "page": str(page)}
            try:
                response = await self.client.request(operation, "GET", path, params=params)
            except UpstreamError as error:
                if error.extensions.get("status") == 404:
                    raise NotFound(
                        f"GitLab {what} not found in instance {self.client.account.name!r}"
                    ) from None
                raise
            found = response.json()
            if not isinstance(found, list):
                raise UpstreamError(f"GitLab {operation} answered something other than a list")
            items.extend(found)
            page = _next_page(response, page, operation)
        return items


def _next_page(response: httpx.Response, page: int, operation: str) -> int | None:
    """The page `X-Next-Page` names (empty on the last page); a page that does not move
    forward is refused, so a confused upstream cannot loop the client."""
    following = response.headers.get("x-next-page", "").strip()
    if not following:
        return None
    if not following.isdigit() or int(following) <= page:
        raise UpstreamError(f"GitLab {operation} named an invalid next page")
    return int(following)
