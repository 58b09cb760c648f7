"""A qontract-server-compatible GraphQL endpoint serving a small app-interface bundle."""

import threading
from typing import Any

from graphql import build_schema, graphql
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SDL = """
interface Permission_v1 {
  name: String!
  description: String
  service: String!
}

type PermissionSlackUsergroup_v1 implements Permission_v1 {
  name: String!
  description: String
  service: String!
  handle: String!
  workspace: SlackWorkspace_v1!
  channels: [String!]
  ownersFromRepos: [String!]
  skip: Boolean
  pagerduty: [PagerDutyTarget_v1!]
  roles: [Role_v1!]
  schedule: Schedule_v1
}

type PermissionGithubOrgTeam_v1 implements Permission_v1 {
  name: String!
  description: String
  service: String!
  org: String!
  team: String!
}

type SlackWorkspace_v1 {
  name: String!
  managedUsergroups: [String!]!
  integrations: [SlackWorkspaceIntegration_v1!]
}

type SlackWorkspaceIntegration_v1 {
  name: String!
}

type PagerDutyInstance_v1 {
  name: String!
}

type PagerDutyTarget_v1 {
  name: String!
  instance: PagerDutyInstance_v1!
  scheduleID: String
  escalationPolicyID: String
}

type Role_v1 {
  name: String!
  users: [User_v1!]!
}

type User_v1 {
  name: String!
  org_username: String!
  github_username: String!
  pagerduty_username: String
}

type ScheduleEntry_v1 {
  start: String!
  end: String!
  users: [User_v1!]!
}

type Schedule_v1 {
  schedule: [ScheduleEntry_v1!]!
}

type Query {
  permissions_v1: [Permission_v1!]
  users_v1: [User_v1!]
  roles_v1: [Role_v1!]
}
"""


class QontractServerEmulator:
    """Serves `bundle` (dicts shaped like app-interface data) at POST /graphql, counting calls."""

    def __init__(self, bundle: dict[str, Any], token: str | None = None) -> None:
        self.bundle = bundle
        self.token = token
        self.calls = 0
        self._lock = threading.Lock()
        self._schema = build_schema(SDL)
        self.app = Starlette(routes=[Route("/graphql", self.graphql, methods=["POST"])])

    async def graphql(self, request: Request) -> Response:
        """Execute a GraphQL request against the bundle."""
        with self._lock:
            self.calls += 1
        if self.token and request.headers.get("authorization") != f"Bearer {self.token}":
            return Response("Unauthorized", status_code=401)
        body = await request.json()
        result = await graphql(
            self._schema,
            body["query"],
            root_value=self.bundle,
            variable_values=body.get("variables"),
        )
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = [error.formatted for error in result.errors]
        return JSONResponse(payload)


def user(org: str, github: str | None = None, pagerduty: str | None = None) -> dict[str, Any]:
    """A User_v1."""
    return {
        "name": org.title(),
        "org_username": org,
        "github_username": github or f"{org}-gh",
        "pagerduty_username": pagerduty,
    }


def usergroup(handle: str, workspace: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A PermissionSlackUsergroup_v1 for `handle` in `workspace`."""
    return {
        "__typename": "PermissionSlackUsergroup_v1",
        "name": f"{handle}-usergroup",
        "description": f"{handle} team",
        "service": "slack-usergroup",
        "handle": handle,
        "workspace": workspace,
        "channels": [],
        "ownersFromRepos": None,
        "skip": None,
        "pagerduty": None,
        "roles": [],
        "schedule": None,
        **fields,
    }


def workspace(name: str, managed: list[str], integrations: list[str]) -> dict[str, Any]:
    """A SlackWorkspace_v1."""
    return {
        "name": name,
        "managedUsergroups": managed,
        "integrations": [{"name": n} for n in integrations],
    }
