"""Typed async client of the GitLab REST API v4 (no caching; the source adds that)."""

import re
import time
from collections.abc import Mapping
from typing import Any, Literal

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


class GitLabMergeRequest(BaseModel):
    """A merge request as GitLab lists or creates it."""

    iid: int
    title: str
    state: str
    web_url: str
    source_branch: str
    target_branch: str
    labels: list[str] = []


FileAction = Literal["create", "update", "delete"]
REFUSALS = frozenset({400, 404, 409, 422})
"""The answers of a write that GitLab explains in its `message` (shown in the error)."""
MAX_MESSAGE_CHARS = 300


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

    async def open_merge_requests(self, project: str, title: str) -> list[GitLabMergeRequest]:
        """The open merge requests of `project` whose title is exactly `title` (GitLab's
        `search` matches words of it; the exact comparison is made here)."""
        path = UpstreamPath("/projects/{}/merge_requests", PROJECT.check(project))
        params = {"state": "opened", "search": title, "in": "title"}
        items = await self._pages("merge_requests.list", path, f"project {project}", params)
        found = [GitLabMergeRequest.model_validate(item) for item in items]
        return [mr for mr in found if mr.title == title]

    async def create_branch(self, project: str, branch: str, ref: str) -> None:
        """Create `branch` in `project` from `ref`."""
        where = UpstreamPath("/projects/{}/repository/branches", PROJECT.check(project))
        body = {"branch": REF.check(branch), "ref": REF.check(ref)}
        await self._write("branches.create", "POST", where, body, f"creating branch {branch}")

    async def delete_branch(self, project: str, branch: str) -> bool:
        """Delete `branch` from `project`; False when it did not exist."""
        where = UpstreamPath(
            "/projects/{}/repository/branches/{}", PROJECT.check(project), REF.check(branch)
        )
        try:
            await self.client.request("branches.delete", "DELETE", where)
        except UpstreamError as error:
            if error.extensions.get("status") == 404:
                return False
            raise
        return True

    async def commit(
        self,
        project: str,
        branch: str,
        message: str,
        action: FileAction,
        path: str,
        content: str | None,
    ) -> None:
        """One commit on `branch` that creates, updates or deletes the file `path`."""
        change: dict[str, str] = {"action": action, "file_path": file_path(path)}
        if content is not None:
            change["content"] = content
        body = {"branch": REF.check(branch), "commit_message": message, "actions": [change]}
        where = UpstreamPath("/projects/{}/repository/commits", PROJECT.check(project))
        await self._write("commits.create", "POST", where, body, f"{action} {shown(path)}")

    async def create_merge_request(
        self,
        project: str,
        source_branch: str,
        target_branch: str,
        title: str,
        description: str,
        labels: list[str],
    ) -> GitLabMergeRequest:
        """Open a merge request from `source_branch`, which GitLab removes once it is merged."""
        where = UpstreamPath("/projects/{}/merge_requests", PROJECT.check(project))
        body = {
            "source_branch": REF.check(source_branch),
            "target_branch": REF.check(target_branch),
            "title": title,
            "description": description,
            "labels": ",".join(labels),
            "remove_source_branch": True,
        }
        created = await self._write("merge_requests.create", "POST", where, body, "opening the MR")
        return GitLabMergeRequest.model_validate(created)

    async def _write(
        self, operation: str, method: str, where: UpstreamPath, body: dict[str, Any], what: str
    ) -> Any:
        """Send a write; a refusal is UPSTREAM_ERROR with GitLab's own (bounded) message."""
        response = await self.client.request(operation, method, where, json=body, answers=REFUSALS)
        if response.status_code in REFUSALS:
            raise UpstreamError(
                f"GitLab refused {what} (HTTP {response.status_code}): {_refusal(response)}",
                status=response.status_code,
            )
        return response.json()

    async def project_members(self, project: str) -> list[GitLabMember]:
        """Every member of `project`, inherited ones included, all pages."""
        path = UpstreamPath("/projects/{}/members/all", PROJECT.check(project))
        items = await self._pages("projects.members.all", path, f"project {project}")
        return [GitLabMember.model_validate(item) for item in items]

    async def _pages(
        self,
        operation: str,
        path: UpstreamPath,
        what: str,
        filters: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """All items of a list endpoint (with `filters`), page after page as `X-Next-Page`
        names them."""
        items: list[dict[str, Any]] = []
        page: int | None = 1
        while page is not None:
            if page > MAX_PAGES:
                raise UpstreamError(f"GitLab {what}: more than {MAX_PAGES} pages")
            params = {**(filters or {}), "per_page": str(PER_PAGE), "page": str(page)}
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


def _refusal(response: httpx.Response) -> str:
    """GitLab's `message` (or `error`) of a refused write, bounded."""
    try:
        body = response.json()
    except ValueError:
        body = None
    found = body.get("message", body.get("error")) if isinstance(body, dict) else None
    return shown(str(found), MAX_MESSAGE_CHARS) if found is not None else "no message"


def _next_page(response: httpx.Response, page: int, operation: str) -> int | None:
    """The page `X-Next-Page` names (empty on the last page); a page that does not move
    forward is refused, so a confused upstream cannot loop the client."""
    following = response.headers.get("x-next-page", "").strip()
    if not following:
        return None
    if not following.isdigit() or int(following) <= page:
        raise UpstreamError(f"GitLab {operation} named an invalid next page")
    return int(following)
