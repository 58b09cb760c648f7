"""Typed async client of the Jira Cloud REST API v3 (no caching; the source adds that)."""

import base64
import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from gateway.errors import BadUserInput, UpstreamError
from gateway.source import IdSyntax
from gateway.upstream import UpstreamClient, UpstreamPath

FIELDS = ["summary", "status", "assignee", "labels"]
PAGE_SIZE = 100
MAX_PAGES = 100
ISSUE_KEY = IdSyntax(
    "Jira issue key",
    re.compile(r"[A-Za-z][A-Za-z0-9_]*-[0-9]+"),
    255,
    "a project key and a number, like APPSRE-123",
)
PROJECT_KEY = IdSyntax(
    "Jira project key",
    re.compile(r"[A-Za-z][A-Za-z0-9_]*"),
    255,
    "a letter, then letters, digits or '_', like APPSRE",
)
SEARCH = UpstreamPath("/rest/api/3/search/jql")
BULK_FETCH = UpstreamPath("/rest/api/3/issue/bulkfetch")
PROJECT_SEARCH = UpstreamPath("/rest/api/3/project/search")


class JiraUser(BaseModel):
    """An assignee as Jira shows it (Cloud: account id; e-mail only when visible)."""

    account_id: str | None = Field(None, alias="accountId")
    display_name: str = Field("", alias="displayName")
    email: str | None = Field(None, alias="emailAddress")


class JiraIssue(BaseModel):
    """An issue with the fields integrations read."""

    key: str
    summary: str = ""
    status: str = ""
    assignee: JiraUser | None = None
    labels: list[str] = Field(default_factory=list)

    @classmethod
    def from_api(cls, issue: dict[str, Any]) -> "JiraIssue":
        """An issue from Jira's `{key, fields: {...}}` shape."""
        fields = issue.get("fields") or {}
        assignee = fields.get("assignee")
        return cls(
            key=issue["key"],
            summary=fields.get("summary") or "",
            status=(fields.get("status") or {}).get("name", ""),
            assignee=JiraUser.model_validate(assignee) if assignee else None,
            labels=fields.get("labels") or [],
        )


class JiraProject(BaseModel):
    """A project: key, id and name."""

    key: str
    id: str
    name: str = ""


def headers(token: str, scheme: Literal["bearer", "basic"]) -> dict[str, str]:
    """Request headers: a bearer token (Data Center PAT), or basic `email:api_token` (Cloud)."""
    if scheme == "basic":
        encoded = base64.b64encode(token.encode()).decode()
        authorization = f"Basic {encoded}"
    else:
        authorization = f"Bearer {token}"
    return {"Authorization": authorization, "Accept": "application/json"}


class JiraApi:
    """Issues and projects of one Jira instance.

    Searches use `POST /rest/api/3/search/jql` with `nextPageToken` pagination (the API that
    replaces the retired offset-paged `/rest/api/2/search`); they are read-only, so retried.
    Issues by key use `POST /rest/api/3/issue/bulkfetch`, up to 100 keys per call.
    """

    def __init__(self, client: UpstreamClient) -> None:
        self.client = client

    async def search(self, jql: str) -> list[JiraIssue]:
        """Every issue matching `jql`, all pages."""
        issues: list[JiraIssue] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            body: dict[str, Any] = {"jql": jql, "fields": FIELDS, "maxResults": PAGE_SIZE}
            if token is not None:
                body["nextPageToken"] = token
            page = await self._post("search.jql", SEARCH, body, what="JQL")
            issues.extend(JiraIssue.from_api(issue) for issue in page.get("issues", []))
            token = page.get("nextPageToken")
            if token is None or page.get("isLast", False):
                return issues
        raise UpstreamError(f"Jira search: more than {MAX_PAGES} pages")

    async def issues(self, keys: Sequence[str]) -> dict[str, JiraIssue]:
        """The issues among `keys` that exist and are visible, by upper-case key."""
        found: dict[str, JiraIssue] = {}
        for start in range(0, len(keys), PAGE_SIZE):
            body = {"issueIdsOrKeys": list(keys[start : start + PAGE_SIZE]), "fields": FIELDS}
            page = await self._post("issue.bulkfetch", BULK_FETCH, body)
            for issue in page.get("issues", []):
                parsed = JiraIssue.from_api(issue)
                found[parsed.key.upper()] = parsed
        return found

    async def projects(self, keys: Sequence[str] | None) -> list[JiraProject]:
        """Projects with `keys` (those that exist), or every visible project; all pages."""
        projects: list[JiraProject] = []
        start = 0
        for _ in range(MAX_PAGES):
            params: dict[str, str | list[str]] = {
                "startAt": str(start),
                "maxResults": str(PAGE_SIZE),
                "keys": list(keys or []),
            }
            response = await self.client.request(
                "project.search", "GET", PROJECT_SEARCH, params=params
            )
            page = response.json()
            values = page.get("values", [])
            projects.extend(JiraProject.model_validate(value) for value in values)
            start += len(values)
            if page.get("isLast", True) or not values:
                return projects
        raise UpstreamError(f"Jira project search: more than {MAX_PAGES} pages")

    async def _post(
        self, operation: str, path: UpstreamPath, body: dict[str, Any], what: str = ""
    ) -> dict[str, Any]:
        try:
            response = await self.client.request(
                operation, "POST", path, json=body, idempotent=True
            )
        except UpstreamError as error:
            if what and error.extensions.get("status") == 400:
                raise BadUserInput(
                    f"Jira instance {self.client.account.name!r} rejected the {what} query"
                ) from None
            raise
        page: dict[str, Any] = response.json()
        return page
