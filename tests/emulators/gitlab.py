"""A stateful GitLab REST v4 emulator: projects, repository files, branches, commits, merge
requests and members."""

import asyncio
import base64
import hashlib
import math
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.emulators.base import UpstreamEmulator, json_body

PREFIX = "/api/v4"


@dataclass
class GitLabProject:
    """A project: its numeric id, full path, files per branch or tag, the commits made through
    the API, its merge requests and members."""

    id: int
    path_with_namespace: str
    default_branch: str = "master"
    files: dict[str, dict[str, str | bytes]] = field(default_factory=dict)
    members: list[dict[str, Any]] = field(default_factory=list)
    commits: list[dict[str, Any]] = field(default_factory=list)
    merge_requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def web_url(self) -> str:
        """The project's page."""
        return f"https://gitlab.example/{self.path_with_namespace}"

    def branch(self, ref: str) -> str | None:
        """The branch or tag `ref` names, directly or by its commit id; None when unknown."""
        if ref in self.files:
            return ref
        by_commit = (name for name in self.files if self.commit_id(name) == ref)
        made = (commit["branch"] for commit in self.commits if commit["id"] == ref)
        return next(by_commit, next(made, None))

    def commit_id(self, ref: str) -> str:
        """The id of the last commit on `ref` (made up and stable until the next commit)."""
        count = sum(1 for commit in self.commits if commit["branch"] == ref)
        made = f"{self.path_with_namespace}@{ref}" + (f"#{count}" if count else "")
        return hashlib.sha1(made.encode()).hexdigest()

    def add_member(self, username: str, user_id: int, access_level: int = 30) -> None:
        """A member with `access_level` (10 guest ... 50 owner)."""
        self.members.append(
            {
                "id": user_id,
                "username": username,
                "name": username.title(),
                "state": "active",
                "access_level": access_level,
                "web_url": f"https://gitlab.example/{username}",
            }
        )


@dataclass
class GitLabState:
    """What the emulated GitLab holds, how many of the next calls it throttles, the requests
    left this minute (`quota`, None: unlimited, no RateLimit headers), and how late a created
    merge request is answered (`merge_request_answer_delay`: made at once, answered after)."""

    token: str = "glpat-test-token"
    projects: list[GitLabProject] = field(default_factory=list)
    throttled: int = 0
    throttle_retry_after: float = 1.0
    quota: int | None = None
    merge_request_answer_delay: float = 0.0

    def add_project(
        self, path_with_namespace: str, default_branch: str = "master"
    ) -> GitLabProject:
        """A new project with the next numeric id."""
        project = GitLabProject(len(self.projects) + 1, path_with_namespace, default_branch)
        self.projects.append(project)
        return project

    def project(self, ident: str) -> GitLabProject | None:
        """The project a numeric id or a full path names, as GitLab resolves `:id`."""
        for project in self.projects:
            if ident.isdigit() and project.id == int(ident):
                return project
            if project.path_with_namespace == ident:
                return project
        return None


def _rate_headers(remaining: int, reset_in: int) -> dict[str, str]:
    """GitLab's `RateLimit-*` headers for the authenticated API throttle (2,000 a minute)."""
    reset = int(time.time()) + reset_in
    return {
        "RateLimit-Name": "throttle_authenticated_api",
        "RateLimit-Limit": "2000",
        "RateLimit-Observed": str(2000 - remaining),
        "RateLimit-Remaining": str(remaining),
        "RateLimit-Reset": str(reset),
        "RateLimit-ResetTime": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(reset)),
    }


def _message(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


class GitLabEmulator(UpstreamEmulator):
    """Serves the GitLab endpoints the gateway uses, routed on the raw (still encoded) path.

    GitLab takes a project's full path as one URL-encoded `:id` segment (`group%2Fproject`) and
    a file path as one encoded `:file_path` segment, so routing splits the raw path on `/` and
    decodes each segment once, as GitLab's router does.
    """

    def __init__(self, state: GitLabState | None = None) -> None:
        self.state = state or GitLabState()
        methods = ["GET", "POST", "PUT", "DELETE"]
        super().__init__([Route(PREFIX + "/{rest:path}", self.dispatch, methods=methods)])

    def reset(self) -> None:
        """Forget counters, faults, the rate limit and planned throttling."""
        super().reset()
        self.state.throttled = 0
        self.state.quota = None

    def throttle(self, times: int, retry_after: float = 1.0) -> None:
        """Answer the next `times` authenticated calls with GitLab's 429."""
        self.state.throttled = times
        self.state.throttle_retry_after = retry_after

    async def dispatch(self, request: Request) -> Response:
        """Authenticate, throttle, route, then count the call against the quota (if any)."""
        if not self._authenticated(request):
            return _message(401, "401 Unauthorized")
        if self.state.throttled > 0 or self.state.quota == 0:
            self.state.throttled = max(0, self.state.throttled - 1)
            return self._too_many_requests()
        response = await self._route(request)
        if self.state.quota is not None:
            self.state.quota -= 1
            response.headers.update(_rate_headers(self.state.quota, 60))
        return response

    async def _route(self, request: Request) -> Response:
        """`/projects/:id/...` with `:id` and `:file_path` decoded from the raw path."""
        raw = request.scope["raw_path"].decode("ascii", "replace").split("?", 1)[0]
        segments = [unquote(part) for part in raw[len(PREFIX) :].split("/")[1:]]
        if len(segments) < 2 or segments[0] != "projects":
            return JSONResponse({"error": "404 Not Found"}, status_code=404)
        project = self.state.project(segments[1])
        if project is None:
            return _message(404, "404 Project Not Found")
        rest = segments[2:]
        if request.method != "GET":
            return await self._write(request, project, rest)
        match rest:
            case []:
                return self._project(project)
            case ["merge_requests"]:
                return self._merge_requests(request, raw, project)
            case ["repository", "files", path]:
                return self._file(request, project, path)
            case ["repository", "files", path, "raw"]:
                return self._raw(request, project, path)
            case ["repository", "commits", ref]:
                return self._commit(project, ref)
            case ["repository", "branches", name]:
                return self._branch(project, name)
            case ["members", "all"]:
                return self._page(request, raw, project.members)
        return JSONResponse({"error": "404 Not Found"}, status_code=404)

    async def _write(self, request: Request, project: GitLabProject, rest: list[str]) -> Response:
        """The writes: branches (create, delete), commits with actions, merge requests."""
        match request.method, rest:
            case "POST", ["repository", "branches"]:
                body = {**request.query_params, **await json_body(request)}
                return self._create_branch(project, str(body.get("branch", "")), body.get("ref"))
            case "DELETE", ["repository", "branches", name]:
                if project.files.pop(name, None) is None:
                    return _message(404, "404 Branch Not Found")
                return Response(status_code=204)
            case "POST", ["repository", "commits"]:
                return self._create_commit(project, await json_body(request))
            case "POST", ["merge_requests"]:
                body = {**request.query_params, **await json_body(request)}
                created = self._create_merge_request(project, body)
                await asyncio.sleep(self.state.merge_request_answer_delay)
                return created
        return JSONResponse({"error": "405 Method Not Allowed"}, status_code=405)

    def _authenticated(self, request: Request) -> bool:
        token = self.state.token
        return (
            request.headers.get("private-token") == token
            or request.headers.get("authorization") == f"Bearer {token}"
        )

    def _too_many_requests(self) -> Response:
        wait = max(1, math.ceil(self.state.throttle_retry_after))
        headers = {"Retry-After": str(wait), **_rate_headers(0, wait)}
        return PlainTextResponse("Retry later\n", status_code=429, headers=headers)

    def _project(self, project: GitLabProject) -> JSONResponse:
        namespace, _, path = project.path_with_namespace.rpartition("/")
        return JSONResponse(
            {
                "id": project.id,
                "name": path,
                "path": path,
                "path_with_namespace": project.path_with_namespace,
                "name_with_namespace": project.path_with_namespace.replace("/", " / "),
                "default_branch": project.default_branch,
                "namespace": {"full_path": namespace, "path": namespace.rsplit("/", 1)[-1]},
                "web_url": f"https://gitlab.example/{project.path_with_namespace}",
            }
        )

    def _content(
        self, request: Request, project: GitLabProject, path: str, required: bool
    ) -> tuple[str, bytes] | Response:
        ref = request.query_params.get("ref")
        if ref is None and required:
            return JSONResponse({"error": "ref is missing, ref is empty"}, status_code=400)
        branch = project.branch(ref or project.default_branch)
        content = None if branch is None else project.files[branch].get(path)
        if branch is None or content is None:
            return _message(404, "404 File Not Found")
        return branch, content.encode() if isinstance(content, str) else content

    def _file(self, request: Request, project: GitLabProject, path: str) -> Response:
        """GET .../repository/files/:file_path?ref: metadata and base64 `content`."""
        found = self._content(request, project, path, required=True)
        if isinstance(found, Response):
            return found
        branch, content = found
        commit = project.commit_id(branch)
        return JSONResponse(
            {
                "file_name": path.rsplit("/", 1)[-1],
                "file_path": path,
                "size": len(content),
                "encoding": "base64",
                "content": base64.b64encode(content).decode(),
                "content_sha256": hashlib.sha256(content).hexdigest(),
                "ref": request.query_params["ref"],
                "blob_id": hashlib.sha1(content).hexdigest(),
                "commit_id": commit,
                "last_commit_id": commit,
                "execute_filemode": False,
            }
        )

    def _raw(self, request: Request, project: GitLabProject, path: str) -> Response:
        """GET .../repository/files/:file_path/raw?ref: the bytes (ref defaults to the default
        branch)."""
        found = self._content(request, project, path, required=False)
        if isinstance(found, Response):
            return found
        return Response(found[1], media_type="text/plain; charset=utf-8")

    def _commit(self, project: GitLabProject, ref: str) -> JSONResponse:
        """GET .../repository/commits/:sha (a branch, tag or commit id)."""
        branch = project.branch(ref)
        if branch is None:
            return _message(404, "404 Commit Not Found")
        commit = project.commit_id(branch)
        return JSONResponse(
            {"id": commit, "short_id": commit[:8], "title": f"Tip of {branch}", "parent_ids": []}
        )

    def _branch(self, project: GitLabProject, name: str) -> JSONResponse:
        """GET .../repository/branches/:branch."""
        if name not in project.files:
            return _message(404, "404 Branch Not Found")
        return JSONResponse(_branch_json(project, name))

    def _create_branch(self, project: GitLabProject, name: str, ref: object) -> JSONResponse:
        """POST .../repository/branches: `branch` from `ref` (a branch or commit id)."""
        if not name or not isinstance(ref, str) or not ref:
            return JSONResponse({"error": "branch is missing, ref is missing"}, status_code=400)
        if name in project.files:
            return _message(400, "Branch already exists")
        source = project.branch(ref)
        if source is None:
            return _message(400, "Invalid reference name: " + ref)
        project.files[name] = dict(project.files[source])
        return JSONResponse(_branch_json(project, name), status_code=201)

    def _create_commit(self, project: GitLabProject, body: dict[str, Any]) -> JSONResponse:
        """POST .../repository/commits: apply every action to `branch`, all or none."""
        branch, message, actions = (
            body.get("branch"),
            body.get("commit_message"),
            body.get("actions"),
        )
        if not isinstance(branch, str) or not isinstance(message, str) or not actions:
            return JSONResponse(
                {"error": "branch is missing, commit_message is missing, actions is missing"},
                status_code=400,
            )
        if branch not in project.files:
            return _message(400, "You can only create or edit files when you are on a branch")
        files = dict(project.files[branch])
        for action in actions:
            path = action.get("file_path", "")
            kind = action.get("action")
            if kind == "create" and path in files:
                return _message(400, "A file with this name already exists")
            if kind in ("update", "delete") and path not in files:
                return _message(400, "A file with this name doesn't exist")
            if kind in ("create", "update"):
                files[path] = str(action.get("content", ""))
            elif kind == "delete":
                del files[path]
            else:
                return JSONResponse({"error": "actions[action] does not have a valid value"}, 400)
        project.files[branch] = files
        commit = {
            "branch": branch,
            "title": message.split("\n", 1)[0],
            "message": message,
            "actions": [dict(action) for action in actions],
        }
        project.commits.append(commit)
        commit["id"] = project.commit_id(branch)
        answer = {k: commit[k] for k in ("id", "title", "message")}
        return JSONResponse({**answer, "short_id": commit["id"][:8]}, status_code=201)

    def _merge_requests(
        self, request: Request, raw_path: str, project: GitLabProject
    ) -> JSONResponse:
        """GET .../merge_requests: filtered by `state` and by `search` in the title (and the
        description unless `in=title`), newest first, paginated."""
        state = request.query_params.get("state", "all")
        search = request.query_params.get("search", "").lower()
        where = request.query_params.get("in", "title,description").split(",")
        found = [
            mr
            for mr in reversed(project.merge_requests)
            if state in ("all", mr["state"])
            and (
                not search
                or ("title" in where and search in mr["title"].lower())
                or ("description" in where and search in mr["description"].lower())
            )
        ]
        return self._page(request, raw_path, found)

    def _create_merge_request(self, project: GitLabProject, body: dict[str, Any]) -> JSONResponse:
        """POST .../merge_requests: from an existing source branch; one open MR per branch."""
        source, target, title = (
            body.get("source_branch"),
            body.get("target_branch"),
            body.get("title"),
        )
        if not source or not target or not title:
            return JSONResponse(
                {"error": "source_branch is missing, target_branch is missing, title is missing"},
                status_code=400,
            )
        if source not in project.files or target not in project.files:
            return _message(400, "Source branch or target branch does not exist")
        for mr in project.merge_requests:
            if mr["state"] == "opened" and mr["source_branch"] == source:
                taken = "Another open merge request already exists for this source branch"
                return _message(409, f"{taken}: !{mr['iid']}")
        labels = body.get("labels") or []
        if isinstance(labels, str):
            labels = [label for label in labels.split(",") if label]
        iid = len(project.merge_requests) + 1
        merge_request = {
            "id": 1000 * project.id + iid,
            "iid": iid,
            "project_id": project.id,
            "title": title,
            "description": body.get("description") or "",
            "state": "opened",
            "source_branch": source,
            "target_branch": target,
            "labels": labels,
            "force_remove_source_branch": bool(body.get("remove_source_branch")),
            "web_url": f"{project.web_url}/-/merge_requests/{iid}",
        }
        project.merge_requests.append(merge_request)
        return JSONResponse(merge_request, status_code=201)

    def _page(self, request: Request, raw_path: str, items: list[dict[str, Any]]) -> JSONResponse:
        """One page of `items` with GitLab's offset pagination headers and `Link`."""
        per_page = max(1, min(100, int(request.query_params.get("per_page", "20"))))
        page = max(1, int(request.query_params.get("page", "1")))
        last = max(1, -(-len(items) // per_page))
        base = f"{request.url.scheme}://{request.url.netloc}{raw_path}"
        query = {k: v for k, v in request.query_params.items() if k != "page"}

        def link(number: int, rel: str) -> str:
            return f'<{base}?{urlencode({**query, "page": number})}>; rel="{rel}"'

        links = [link(1, "first"), link(last, "last")]
        if page < last:
            links.insert(0, link(page + 1, "next"))
        if page > 1:
            links.insert(0, link(page - 1, "prev"))
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Next-Page": str(page + 1) if page < last else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
            "X-Total": str(len(items)),
            "X-Total-Pages": str(last),
            "Link": ", ".join(links),
        }
        start = (page - 1) * per_page
        return JSONResponse(items[start : start + per_page], headers=headers)


def _branch_json(project: GitLabProject, name: str) -> dict[str, Any]:
    """A branch as GitLab describes it."""
    commit = project.commit_id(name)
    return {
        "name": name,
        "merged": False,
        "protected": name == project.default_branch,
        "default": name == project.default_branch,
        "commit": {"id": commit, "short_id": commit[:8]},
        "web_url": f"{project.web_url}/-/tree/{name}",
    }
