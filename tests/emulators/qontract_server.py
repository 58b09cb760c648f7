"""A qontract-server-compatible endpoint serving a small app-interface bundle.

As the real server: `GET /sha256` (bare hex), `POST /graphql` and `POST /graphqlsha/<sha>` (an
unknown sha is an HTML 404), `extensions.schemas` listing the `$schema` of every datafile object
the answer read, the token compared verbatim. The SDL is a subset of the real schema
(`tests/data/qontract_server/schema.graphql`), field types as there.
"""

import hashlib
import json
import threading
from collections import Counter
from typing import Any

from graphql import build_schema, graphql
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

SDL = """
scalar JSON

interface Permission_v1 {
  schema: String!
  path: String!
  name: String!
  description: String!
  service: String!
}

type PermissionSlackUsergroup_v1 implements Permission_v1 {
  schema: String!
  path: String!
  name: String!
  description: String!
  service: String!
  handle: String!
  workspace: SlackWorkspace_v1!
  pagerduty: [PagerDutyTarget_v1!]
  channels: [String!]!
  ownersFromRepos: [String!]
  schedule: Schedule_v1
  notifications: [SlackUsergroupNotification_v1!]
  skip: Boolean
  roles: [Role_v1!]
}

type PermissionGithubOrgTeam_v1 implements Permission_v1 {
  schema: String!
  path: String!
  name: String!
  description: String!
  service: String!
  org: String!
  team: String!
}

type SlackUsergroupNotification_v1 {
  action: String!
  message: String!
}

type VaultSecret_v1 {
  path: String!
  field: String!
  format: String
  version: Int
}

type SlackWorkspace_v1 {
  schema: String!
  path: String!
  name: String!
  description: String!
  token: VaultSecret_v1!
  integrations: [SlackWorkspaceIntegration_v1!]
  managedUsergroups: [String!]!
}

type SlackWorkspaceIntegration_v1 {
  name: String!
  token: VaultSecret_v1!
  channel: String!
  icon_emoji: String!
  username: String!
}

type PagerDutyInstance_v1 {
  schema: String!
  path: String!
  name: String!
  description: String!
  token: VaultSecret_v1!
}

type PagerDutyTarget_v1 {
  schema: String!
  path: String!
  name: String!
  description: String!
  instance: PagerDutyInstance_v1!
  scheduleID: String
  escalationPolicyID: String
}

type DisableClusterAutomations_v1 {
  integrations: [String!]
}

type Cluster_v1 {
  schema: String!
  path: String!
  name: String!
  description: String
  disable: DisableClusterAutomations_v1
}

type Namespace_v1 {
  schema: String!
  path: String!
  name: String!
  delete: Boolean
  description: String!
  cluster: Cluster_v1!
  managedRoles: Boolean
}

type Access_v1 {
  namespace: Namespace_v1
  role: String
  cluster: Cluster_v1
  group: String
  clusterRole: String
}

type Role_v1 {
  schema: String!
  path: String!
  name: String!
  description: String
  expirationDate: String
  tag_on_cluster_updates: Boolean
  access: [Access_v1!]
  users: [User_v1!]!
}

type User_v1 {
  schema: String!
  path: String!
  name: String!
  org_username: String!
  github_username: String!
  pagerduty_username: String
  tag_on_merge_requests: Boolean
  tag_on_cluster_updates: Boolean
  roles: [Role_v1!]
}

type ScheduleEntry_v1 {
  start: String!
  end: String!
  users: [User_v1!]!
}

type Schedule_v1 {
  schema: String!
  path: String!
  name: String!
  description: String
  schedule: [ScheduleEntry_v1!]!
}

type Integration_v1 {
  schema: String!
  path: String!
  name: String!
  description: String!
  schemas: [String!]!
}

type Query {
  permissions_v1(path: String, filter: JSON): [Permission_v1!]!
  users_v1(org_username: String, path: String, filter: JSON): [User_v1!]
  roles_v1(name: String, path: String, filter: JSON): [Role_v1!]
  clusters_v1(name: String, path: String, filter: JSON): [Cluster_v1!]
  integrations_v1(path: String, filter: JSON): [Integration_v1!]
}
"""

INTEGRATION_SCHEMAS = [
    "/access/permission-1.yml",
    "/access/role-1.yml",
    "/access/user-1.yml",
    "/app-sre/integration-1.yml",
    "/app-sre/schedule-1.yml",
    "/dependencies/pagerduty-instance-1.yml",
    "/dependencies/pagerduty-target-1.yml",
    "/dependencies/slack-workspace-1.yml",
    "/openshift/cluster-1.yml",
    "/openshift/namespace-1.yml",
]


class QontractServerEmulator:
    """Serves `bundle` (root field name to a list of datafile dicts), counting requests."""

    def __init__(self, bundle: dict[str, Any], token: str | None = None) -> None:
        self.bundle = bundle
        self.token = token
        self.sha = hashlib.sha256(json.dumps(bundle, sort_keys=True).encode()).hexdigest()
        self.requests: Counter[str] = Counter()
        self.reload_after_sha_read = False
        self._lock = threading.Lock()
        self._schema = build_schema(SDL)
        self.app = Starlette(
            routes=[
                Route("/sha256", self.sha256, methods=["GET"]),
                Route("/graphql", self.graphql, methods=["POST"]),
                Route("/graphqlsha/{sha}", self.graphql, methods=["POST"]),
            ]
        )

    @property
    def calls(self) -> int:
        """GraphQL requests answered or refused, whatever the path."""
        return sum(n for path, n in self.requests.items() if path != "/sha256")

    def _count(self, request: Request) -> bool:
        with self._lock:
            self.requests[request.url.path] += 1
        return not self.token or request.headers.get("authorization") == self.token

    async def sha256(self, request: Request) -> Response:
        """The bundle's sha as bare hex; with `reload_after_sha_read`, a new bundle right after."""
        if not self._count(request):
            return Response("Unauthorized", status_code=401)
        sha = self.sha
        if self.reload_after_sha_read:
            self.sha = hashlib.sha256(sha.encode()).hexdigest()
        return HTMLResponse(sha)

    async def graphql(self, request: Request) -> Response:
        """Execute a GraphQL request against the bundle, listing the schemas it read."""
        if not self._count(request):
            return Response("Unauthorized", status_code=401)
        pinned = request.path_params.get("sha")
        if pinned is not None and pinned != self.sha:
            return HTMLResponse(f"Cannot POST /graphqlsha/{pinned}", status_code=404)
        body = await request.json()
        schemas: dict[str, None] = {}

        def resolve(source: Any, info: Any, **_: Any) -> Any:
            if "$schema" in source:
                schemas[source["$schema"]] = None
            return source.get(info.field_name)

        result = await graphql(
            self._schema,
            body["query"],
            root_value=self.bundle,
            variable_values=body.get("variables"),
            field_resolver=resolve,
        )
        payload: dict[str, Any] = {"data": result.data, "extensions": {"schemas": list(schemas)}}
        if result.errors:
            payload["errors"] = [error.formatted for error in result.errors]
        return JSONResponse(payload)


def user(
    org: str,
    github: str | None = None,
    pagerduty: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A User_v1."""
    return {
        "$schema": "/access/user-1.yml",
        "path": f"/users/{org}.yml",
        "name": org.title(),
        "org_username": org,
        "github_username": github or f"{org}-gh",
        "pagerduty_username": pagerduty,
        "tag_on_merge_requests": None,
        "tag_on_cluster_updates": None,
        **fields,
    }


def usergroup(handle: str, workspace: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A PermissionSlackUsergroup_v1 for `handle` in `workspace`."""
    return {
        "$schema": "/access/permission-1.yml",
        "__typename": "PermissionSlackUsergroup_v1",
        "path": f"/permissions/{workspace['name']}-{handle}.yml",
        "name": f"{handle}-usergroup",
        "description": f"{handle} team",
        "service": "slack-usergroup",
        "handle": handle,
        "workspace": workspace,
        "channels": [],
        "notifications": None,
        "ownersFromRepos": None,
        "skip": None,
        "pagerduty": None,
        "roles": [],
        "schedule": None,
        **fields,
    }


def workspace(
    name: str, managed: list[str], integrations: list[str], channel: str = "reconcile"
) -> dict[str, Any]:
    """A SlackWorkspace_v1 whose integration settings all post to `channel`."""
    return {
        "$schema": "/dependencies/slack-workspace-1.yml",
        "path": f"/dependencies/slack/{name}.yml",
        "name": name,
        "managedUsergroups": managed,
        "integrations": [{"name": n, "channel": channel} for n in integrations],
    }


def integration(name: str, schemas: list[str] | None = None) -> dict[str, Any]:
    """An Integration_v1 allowed to read `schemas` (by default all that slack-usergroups reads)."""
    return {
        "$schema": "/app-sre/integration-1.yml",
        "path": f"/integrations/{name}.yml",
        "name": name,
        "schemas": INTEGRATION_SCHEMAS if schemas is None else schemas,
    }


def cluster(name: str, disabled: list[str] | None = None) -> dict[str, Any]:
    """A Cluster_v1, optionally opting out of `disabled` integrations."""
    return {
        "$schema": "/openshift/cluster-1.yml",
        "path": f"/openshift/{name}/cluster.yml",
        "name": name,
        "disable": {"integrations": disabled} if disabled is not None else None,
    }


def role(name: str, users: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """A Role_v1 with `users`."""
    return {
        "$schema": "/access/role-1.yml",
        "path": f"/roles/{name}.yml",
        "name": name,
        "expirationDate": None,
        "tag_on_cluster_updates": None,
        "access": None,
        "users": users,
        **fields,
    }
