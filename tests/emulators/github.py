"""A stateful GitHub REST v3 emulator: org members with roles, invitations, memberships, users,
collaborators and file contents."""

import base64
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.emulators.base import UpstreamEmulator

DOCS = "https://docs.github.com/rest"
ADMIN = "admin"
MEMBER_ROLE_FILTERS = ("all", "admin", "member")


@dataclass
class GitHubState:
    """What the emulated GitHub holds; `files` maps (owner/name, ref) to path → text.

    `member_roles` maps org → lower-case login → `admin` or `member`; `users` maps lower-case
    login → account (every member is one); `invitations` holds each org's pending invitations.
    """

    token: str = "ghp-test-token"
    members: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    member_roles: dict[str, dict[str, str]] = field(default_factory=dict)
    invitations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    collaborators: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    files: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    quota: int = 5000

    def add_user(self, login: str, user_id: int) -> dict[str, Any]:
        """An account GitHub knows (`GET /users/{login}`), whether or not it is in an org."""
        account = {"login": login, "id": user_id, "type": "User"}
        return self.users.setdefault(login.lower(), account)

    def add_member(self, org: str, login: str, user_id: int, role: str = "member") -> None:
        """A member of `org` with `role` (`admin` is an owner)."""
        self.members.setdefault(org, []).append(dict(self.add_user(login, user_id)))
        self.member_roles.setdefault(org, {})[login.lower()] = role

    def invite(self, org: str, login: str, user_id: int, role: str = "direct_member") -> None:
        """A pending invitation of the account `login` to `org` with `role` (`admin`,
        `direct_member`, `billing_manager`...)."""
        self.add_user(login, user_id)
        self.members.setdefault(org, [])
        invitation = {
            "id": 9000 + sum(len(found) for found in self.invitations.values()),
            "login": login,
            "email": None,
            "role": role,
            "created_at": "2026-01-01T00:00:00Z",
            "invitation_source": "member",
        }
        self.invitations.setdefault(org, []).append(invitation)

    def owners(self, org: str) -> set[str]:
        """The lower-case logins of `org`'s admins and of its pending admin invitations."""
        admins = {login for login, role in self.member_roles.get(org, {}).items() if role == ADMIN}
        invited = {
            i["login"].lower()
            for i in self.invitations.get(org, [])
            if i["login"] and i["role"] == ADMIN
        }
        return admins | invited

    def add_collaborator(self, repo: str, login: str, user_id: int, role: str = "write") -> None:
        """A collaborator of `owner/name` with the permissions of `role`."""
        levels = ["pull", "triage", "push", "maintain", "admin"]
        granted = {"read": 1, "triage": 2, "write": 3, "maintain": 4, "admin": 5}[role]
        permissions = {level: index < granted for index, level in enumerate(levels)}
        self.collaborators.setdefault(repo, []).append(
            {"login": login, "id": user_id, "role_name": role, "permissions": permissions}
        )


def _invalid(message: str) -> JSONResponse:
    return JSONResponse(
        {"message": "Validation Failed", "errors": [message], "documentation_url": DOCS}, 422
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
                Route("/orgs/{org}/invitations", self.org_invitations),
                Route("/orgs/{org}/memberships/{username}", self.set_membership, methods=["PUT"]),
                Route("/users/{username}", self.user),
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
        """GET /orgs/{org}/members?role=all|admin|member&per_page&page."""
        refused = self._refused(request)
        if refused is not None:
            return refused
        org = request.path_params["org"]
        members = self.state.members.get(org)
        if members is None:
            return _not_found()
        role = request.query_params.get("role", "all")
        if role not in MEMBER_ROLE_FILTERS:
            return _invalid(f"role must be one of {', '.join(MEMBER_ROLE_FILTERS)}")
        roles = self.state.member_roles.get(org, {})
        if role != "all":
            members = [m for m in members if roles.get(m["login"].lower(), "member") == role]
        return self._page(request, members)

    async def org_invitations(self, request: Request) -> JSONResponse:
        """GET /orgs/{org}/invitations?per_page&page: pending invitations with their role."""
        refused = self._refused(request)
        if refused is not None:
            return refused
        org = request.path_params["org"]
        if org not in self.state.members:
            return _not_found()
        return self._page(request, self.state.invitations.get(org, []))

    async def user(self, request: Request) -> JSONResponse:
        """GET /users/{username}: the account (any case), else 404."""
        refused = self._refused(request)
        if refused is not None:
            return refused
        account = self.state.users.get(request.path_params["username"].lower())
        return _not_found() if account is None else JSONResponse(account)

    async def set_membership(self, request: Request) -> JSONResponse:
        """PUT /orgs/{org}/memberships/{username} `{"role": "admin"|"member"}`: a member's role
        changes at once; anyone else gets (or keeps, with the new role) a pending invitation."""
        refused = self._refused(request)
        if refused is not None:
            return refused
        org = request.path_params["org"]
        account = self.state.users.get(request.path_params["username"].lower())
        if org not in self.state.members or account is None:
            return _not_found()
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse(
                {"message": "Problems parsing JSON", "documentation_url": DOCS}, 400
            )
        role = body.get("role", "member") if isinstance(body, dict) else None
        if role not in ("admin", "member"):
            return _invalid("role must be admin or member")
        login = account["login"].lower()
        roles = self.state.member_roles.setdefault(org, {})
        state = "active"
        if login in roles:
            roles[login] = role
        else:
            state = "pending"
            invited = role if role == ADMIN else "direct_member"
            pending = [
                i for i in self.state.invitations.get(org, []) if i["login"] == account["login"]
            ]
            if pending:
                pending[0]["role"] = invited
            else:
                self.state.invite(org, account["login"], account["id"], invited)
        membership = {
            "state": state,
            "role": role,
            "user": account,
            "organization": {"login": org},
            "url": f"{request.base_url}orgs/{org}/memberships/{account['login']}",
        }
        return JSONResponse(membership, headers=self._quota_headers())

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
