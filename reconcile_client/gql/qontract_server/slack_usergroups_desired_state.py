"""Models of `slack_usergroups_desired_state.gql`: permissions, users, clusters and roles."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from reconcile_client.operations import Operation

SLACK_PERMISSION = "PermissionSlackUsergroup_v1"


class User(BaseModel):
    """An app-interface user and their names in PagerDuty and GitHub."""

    org_username: str
    github_username: str
    pagerduty_username: str | None
    tag_on_merge_requests: bool | None


class OrgUser(BaseModel):
    """A user by org username (in a role or a schedule slot)."""

    org_username: str


class ScheduleEntry(BaseModel):
    """A slot: `start` and `end` as `YYYY-MM-DD HH:MM` (UTC)."""

    start: str
    end: str
    users: list[OrgUser]


class Schedule(BaseModel):
    """A schedule datafile and its slots."""

    path: str
    schedule: list[ScheduleEntry]


class RoleUsers(BaseModel):
    """A role, by its users."""

    users: list[OrgUser]


class PagerDutyInstance(BaseModel):
    """A PagerDuty account, by name."""

    name: str


class PagerDutyTarget(BaseModel):
    """A schedule or an escalation policy whose on-call users join the usergroup."""

    name: str
    instance: PagerDutyInstance
    scheduleID: str | None
    escalationPolicyID: str | None


class WorkspaceIntegration(BaseModel):
    """An integration enabled for a workspace and its default channel."""

    name: str
    channel: str


class SlackWorkspace(BaseModel):
    """A Slack workspace and the usergroup handles integrations may manage."""

    path: str
    name: str
    managedUsergroups: list[str]
    integrations: list[WorkspaceIntegration] | None


class Notification(BaseModel):
    """A message for the users a run adds (`addUser`) or removes (`removeUser`)."""

    action: str
    message: str


class SlackUsergroupPermission(BaseModel):
    """A PermissionSlackUsergroup_v1."""

    model_config = ConfigDict(populate_by_name=True)

    typename: Literal["PermissionSlackUsergroup_v1"] = Field(alias="__typename")
    service: str
    handle: str
    description: str | None
    channels: list[str] | None
    notifications: list[Notification] | None
    ownersFromRepos: list[str] | None
    skip: bool | None
    workspace: SlackWorkspace
    pagerduty: list[PagerDutyTarget] | None
    roles: list[RoleUsers] | None
    schedule: Schedule | None


class OtherPermission(BaseModel):
    """Any other kind of permission, ignored."""

    model_config = ConfigDict(populate_by_name=True)

    typename: str = Field(alias="__typename")
    service: str


def _permission_kind(value: Any) -> str:
    typename = value.get("__typename") if isinstance(value, dict) else value.typename
    return "slack" if typename == SLACK_PERMISSION else "other"


Permission = Annotated[
    Annotated[SlackUsergroupPermission, Tag("slack")] | Annotated[OtherPermission, Tag("other")],
    Discriminator(_permission_kind),
]


class ClusterDisable(BaseModel):
    """Integrations disabled for a cluster."""

    integrations: list[str] | None


class Cluster(BaseModel):
    """A cluster, by name, and the integrations it opts out of."""

    name: str
    disable: ClusterDisable | None


class ClusterRef(BaseModel):
    """A cluster, by name."""

    name: str


class Namespace(BaseModel):
    """A namespace: its cluster, whether roles are managed there and whether it is deleted."""

    delete: bool | None
    managedRoles: bool | None
    cluster: ClusterRef


class Access(BaseModel):
    """A role's access: a cluster group or a namespace."""

    cluster: ClusterRef | None
    group: str | None
    namespace: Namespace | None


class ClusterRoleUser(BaseModel):
    """A role member and whether they want to be tagged on cluster updates."""

    org_username: str
    tag_on_cluster_updates: bool | None


class Role(BaseModel):
    """A role datafile: its cluster and namespace access, members and expiration."""

    path: str
    expirationDate: str | None
    tag_on_cluster_updates: bool | None
    users: list[ClusterRoleUser]
    access: list[Access] | None


class SlackUsergroupsDesiredStateData(BaseModel):
    """Data of query SlackUsergroupsDesiredState."""

    permissions: list[Permission] | None
    users: list[User] | None
    clusters: list[Cluster] | None
    roles: list[Role] | None


OPERATION = Operation(
    "qontract_server/slack_usergroups_desired_state.gql", SlackUsergroupsDesiredStateData
)
