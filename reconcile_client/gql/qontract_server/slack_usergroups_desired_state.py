"""Models of `slack_usergroups_desired_state.gql`: usergroup permissions and app-interface users."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from reconcile_client.operations import Operation

SLACK_PERMISSION = "PermissionSlackUsergroup_v1"


class User(BaseModel):
    """An app-interface user and their names in PagerDuty and GitHub."""

    org_username: str
    pagerduty_username: str | None
    github_username: str


class ScheduleUser(BaseModel):
    """A user in a schedule slot."""

    org_username: str


class ScheduleEntry(BaseModel):
    """A slot: `start` and `end` as `YYYY-MM-DD HH:MM` (UTC)."""

    start: str
    end: str
    users: list[ScheduleUser]


class Schedule(BaseModel):
    """A schedule of slots."""

    schedule: list[ScheduleEntry]


class RoleUsers(BaseModel):
    """A role, by its users."""

    users: list[User]


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
    """An integration enabled for a workspace."""

    name: str


class SlackWorkspace(BaseModel):
    """A Slack workspace and the usergroup handles integrations may manage."""

    name: str
    managedUsergroups: list[str]
    integrations: list[WorkspaceIntegration] | None


class SlackUsergroupPermission(BaseModel):
    """A PermissionSlackUsergroup_v1."""

    model_config = ConfigDict(populate_by_name=True)

    typename: Literal["PermissionSlackUsergroup_v1"] = Field(alias="__typename")
    service: str
    name: str
    handle: str
    description: str | None
    channels: list[str] | None
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


class SlackUsergroupsDesiredStateData(BaseModel):
    """Data of query SlackUsergroupsDesiredState."""

    permissions: list[Permission] | None
    users: list[User] | None


OPERATION = Operation(
    "qontract_server/slack_usergroups_desired_state.gql", SlackUsergroupsDesiredStateData
)
