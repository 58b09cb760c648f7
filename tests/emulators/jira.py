"""A stateful Jira Cloud REST v3 emulator: JQL search, bulk fetch and project search."""

import re
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.emulators.base import UpstreamEmulator, json_body

# The JQL this emulator understands: `project = KEY [AND labels = name] [ORDER BY ...]`.
_JQL = re.compile(
    r"^\s*project\s*=\s*(?P<project>\w+)(\s+AND\s+labels\s*=\s*(?P<label>[\w-]+))?"
    r"(\s+ORDER\s+BY\s+.*)?\s*$",
    re.IGNORECASE,
)


@dataclass
class JiraState:
    """What the emulated Jira holds."""

    token: str = "jira-test-token"
    projects: dict[str, dict[str, str]] = field(default_factory=dict)
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add_project(self, key: str, project_id: str, name: str) -> None:
        """A project."""
        self.projects[key] = {"id": project_id, "key": key, "name": name}

    def add_issue(
        self,
        key: str,
        summary: str,
        status: str = "To Do",
        assignee: str | None = None,
        labels: list[str] | None = None,
    ) -> None:
        """An issue; `assignee` is an e-mail, shown as Jira Cloud shows users."""
        user = None
        if assignee is not None:
            user = {
                "accountId": f"acc-{assignee.split('@')[0]}",
                "displayName": assignee.split("@")[0].title(),
                "emailAddress": assignee,
            }
        self.issues[key] = {
            "id": str(10_000 + len(self.issues)),
            "key": key,
            "fields": {
                "summary": summary,
                "status": {"name": status, "id": "1"},
                "assignee": user,
                "labels": labels or [],
            },
        }


def _error(status: int, *messages: str) -> JSONResponse:
    return JSONResponse({"errorMessages": list(messages), "errors": {}}, status_code=status)


class JiraEmulator(UpstreamEmulator):
    """Serves the Jira endpoints the gateway uses, checking the bearer token."""

    def __init__(self, state: JiraState | None = None) -> None:
        self.state = state or JiraState()
        super().__init__(
            [
                Route("/rest/api/3/search/jql", self.search, methods=["POST"]),
                Route("/rest/api/3/issue/bulkfetch", self.bulkfetch, methods=["POST"]),
                Route("/rest/api/3/project/search", self.project_search),
            ]
        )

    def _authorised(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.state.token}"

    async def search(self, request: Request) -> JSONResponse:
        """POST /rest/api/3/search/jql {jql, maxResults, nextPageToken}."""
        if not self._authorised(request):
            return _error(401, "You are not authenticated.")
        body = await json_body(request)
        match = _JQL.match(str(body.get("jql", "")))
        if match is None:
            return _error(400, f"Error in the JQL Query: cannot parse {body.get('jql')!r}")
        project, label = match["project"].upper(), match["label"]
        if project not in self.state.projects:
            return _error(400, f"The value '{project}' does not exist for the field 'project'.")
        found = [
            issue
            for key, issue in self.state.issues.items()
            if key.startswith(f"{project}-")
            and (label is None or label in issue["fields"]["labels"])
        ]
        size = min(100, int(str(body.get("maxResults", 50))))
        start = int(str(body.get("nextPageToken") or 0))
        page: dict[str, Any] = {"issues": found[start : start + size]}
        if start + size < len(found):
            page["nextPageToken"] = str(start + size)
            page["isLast"] = False
        else:
            page["isLast"] = True
        return JSONResponse(page)

    async def bulkfetch(self, request: Request) -> JSONResponse:
        """POST /rest/api/3/issue/bulkfetch {issueIdsOrKeys, fields}: found issues and errors."""
        if not self._authorised(request):
            return _error(401, "You are not authenticated.")
        requested = (await json_body(request)).get("issueIdsOrKeys")
        keys = [str(k).upper() for k in requested] if isinstance(requested, list) else []
        if not keys or len(keys) > 100:
            return _error(400, "issueIdsOrKeys must hold 1 to 100 keys")
        return JSONResponse(
            {
                "issues": [self.state.issues[k] for k in keys if k in self.state.issues],
                "issueErrors": [
                    {"id": k, "errorMessages": ["Issue does not exist or you do not have access"]}
                    for k in keys
                    if k not in self.state.issues
                ],
            }
        )

    async def project_search(self, request: Request) -> JSONResponse:
        """GET /rest/api/3/project/search?startAt&maxResults&keys=...: offset-paged projects."""
        if not self._authorised(request):
            return _error(401, "You are not authenticated.")
        wanted = [k.upper() for k in request.query_params.getlist("keys")]
        projects = [p for k, p in self.state.projects.items() if not wanted or k in wanted]
        start = int(request.query_params.get("startAt", "0"))
        size = min(50, int(request.query_params.get("maxResults", "50")))
        return JSONResponse(
            {
                "startAt": start,
                "maxResults": size,
                "total": len(projects),
                "isLast": start + size >= len(projects),
                "values": projects[start : start + size],
            }
        )
