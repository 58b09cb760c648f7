"""A stateful GitHub REST v3 emulator: org members, collaborators and file contents."""

import base64
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.emulators.base import UpstreamEmulator

DOCS = "https://docs.github.com/rest"


@dataclass
class GitHubState:
    """What the emulated GitHub holds; `files` maps (owner/name, ref) to path → text."""

    token: str = "ghp-test-token"
    members: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    collaborators: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    files: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    quota: int = 5000

    def add_member(self, org: str, login: str, user_id: int) -> None:
        """A member of `org`."""
        self.members.setdefault(org, []).append({"login": login, "id": user_id, "type": "User"})

    def add_collaborator(self, repo: str, login: str, user_id: int, role: str = "write") -> None:
        """A collaborator of `owner/name` with the permissions of `role`."""
        levels = ["pull", "triage", "push", "maintain", "admin"]
        granted = {"read": 1, "triage": 2, "write": 3, "maintain": 4, "admin": 5}[role]
        permissions = {level: index < granted for index, level in enumerate(levels)}
        self.collaborators.setdefault(repo, []).append(
            {"login": login, "id": user_id, "role_name": role, "permissions": permissions}
        )


def _not_found() -> JSONResponse:
    return JSONResponse({"message": "Not Found", "documentation_url": DOCS}, status_code=404)


class GitHubEmulator(UpstreamEmulator):
    """Serves the GitHub endpoints the gateway uses, paginated with `Link` headers."""

    def __init__(self, state: GitHubState | None = None) -> None:
        self.state = state or GitHubState()
        super().__init__(
            [
                Route("/orgs/{org}/members", self.org_members),
                Route("/repos/{owner}/{repo}/collaborators", self.collaborators),
                Route("/repos/{owner}/{repo}/contents/{path:path}", self.contents),
                Route("/repos/{owner}/{repo}/commits/{ref:path}", self.commit),
            ]
        )

    def _refused(self, request: Request) -> JSONResponse | None:
        """A 401 for a wrong token, a primary-limit 403 once the hourly quota is spent."""
        if request.headers.get("authorization") != f"Bearer {self.state.token}":
            return JSONResponse({"message": "Bad credentials", "documentation_url": DOCS}, 401)
        if self.state.quota <= 0:
            message = "API rate limit exceeded for user ID 1."
            body = {"message": message, "documentation_url": DOCS}
            return JSONResponse(body, 403, headers=self._quota_headers())
        self.state.quota -= 1
        return None

    def _quota_headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": str(self.state.quota),
            "x-ratelimit-reset": str(int(time.time()) + 3600),
            "x-ratelimit-resource": "core",
        }

    def _page(self, request: Request, items: list[dict[str, Any]]) -> JSONResponse:
        per_page = min(100, int(request.query_params.get("per_page", "30")))
        page = int(request.query_params.get("page", "1"))
        start = (page - 1) * per_page
        last = max(1, -(-len(items) // per_page))
        links = []
        if page < last:
            links.append(f'<{request.url.include_query_params(page=page + 1)}>; rel="next"')
            links.append(f'<{request.url.include_query_params(page=last)}>; rel="last"')
        headers = self._quota_headers()
        if links:
            headers["Link"] = ", ".join(links)
        return JSONResponse(items[start : start + per_page], headers=headers)

    async def org_members(self, request: Request) -> JSONResponse:
        """GET /orgs/{org}/members?per_page&page."""
        refused = self._refused(request)
        if refused is not None:
            return refused
        members = self.state.members.get(request.path_params["org"])
        return _not_found() if members is None else self._page(request, members)

    async def collaborators(self, request: Request) -> JSONResponse:
        """GET /repos/{owner}/{repo}/collaborators?per_page&page."""
        refused = self._refused(request)
        if refused is not None:
            return refused
        repo = f"{request.path_params['owner']}/{request.path_params['repo']}"
        found = self.state.collaborators.get(repo)
        return _not_found() if found is None else self._page(request, found)

    async def commit(self, request: Request) -> JSONResponse:
        """GET /repos/{owner}/{repo}/commits/{ref}: 200 for a known repo and ref, else 422/404."""
        refused = self._refused(request)
        if refused is not None:
            return refused
        repo = f"{request.path_params['owner']}/{request.path_params['repo']}"
        ref = request.path_params["ref"]
        if (repo, ref) in self.state.files:
            return JSONResponse({"sha": f"{abs(hash((repo, ref))):040x}"[:40]})
        if any(known == repo for known, _ in self.state.files):
            return JSONResponse({"message": f"No commit found for SHA: {ref}"}, status_code=422)
        return _not_found()

    async def contents(self, request: Request) -> JSONResponse:
        """GET /repos/{owner}/{repo}/contents/{path}?ref: a file, base64 in 60-column lines."""
        refused = self._refused(request)
        if refused is not None:
            return refused
        repo = f"{request.path_params['owner']}/{request.path_params['repo']}"
        ref = request.query_params.get("ref", "main")
        path = request.path_params["path"]
        text = self.state.files.get((repo, ref), {}).get(path)
        if text is None:
            return _not_found()
        headers = self._quota_headers()
        size = len(text.encode())
        encoded = base64.b64encode(text.encode()).decode()
        lines = "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60))
        # Above 1 MB GitHub sends no content: encoding "none" (docs: "Get repository content").
        large = size > 1_048_576
        return JSONResponse(
            {
                "type": "file",
                "encoding": "none" if large else "base64",
                "size": size,
                "name": path.rsplit("/", 1)[-1],
                "path": path,
                "content": "" if large else lines + "\n",
            },
            headers=headers,
        )
