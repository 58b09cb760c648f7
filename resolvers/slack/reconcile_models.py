"""What the Slack usergroups reconcile takes and returns: the request, actions and the result."""

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.tasks.lease import resource_of
from gateway.tasks.reconcile import BaseReconcileRequest, BaseReconcileResult


class Notifications(BaseModel):
    """Messages to the users a run adds to or removes from a usergroup (DMs, sent by a listener)."""

    model_config = ConfigDict(extra="forbid")

    add_user: str | None = None
    remove_user: str | None = None


class UsergroupConfig(BaseModel):
    """The desired state of one usergroup: users are org usernames, channels are names."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    users: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    notifications: Notifications | None = None


class DesiredUsergroup(BaseModel):
    """A usergroup by handle and its desired configuration."""

    model_config = ConfigDict(extra="forbid")

    handle: str = Field(min_length=1)
    config: UsergroupConfig


class WorkspaceRequest(BaseModel):
    """One workspace: the handles the gateway may touch and the usergroups desired there."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    managed_usergroups: list[str] = Field(default_factory=list)
    usergroups: list[DesiredUsergroup] = Field(default_factory=list)


class ReconcileRequest(BaseReconcileRequest):
    """The usergroups each workspace should have; a dry run (the default) only computes the
    actions."""

    workspaces: list[WorkspaceRequest] = Field(default_factory=list)

    @property
    def resource(self) -> str:
        """What two real runs must not change at once: one lease per workspace."""
        return resource_of(f"slack-usergroups:{workspace.name}" for workspace in self.workspaces)


class ActionTarget(BaseModel):
    """What every usergroup action names; usergroups are never deleted or disabled."""

    workspace: str
    usergroup: str = Field(description="the usergroup's handle")
    enable: bool = Field(False, description="the disabled usergroup is re-enabled first")


class CreateUsergroup(ActionTarget):
    """Create the usergroup with its description, channels and users, in the same run."""

    kind: Literal["create"] = "create"
    description: str
    channels: list[str]
    users: list[str]


class UpdateUsers(ActionTarget):
    """Set the members to `users` (org usernames)."""

    kind: Literal["update_users"] = "update_users"
    users: list[str]
    users_to_add: list[str]
    users_to_remove: list[str]


class UpdateMetadata(ActionTarget):
    """Change the description and/or default channels (null: unchanged)."""

    kind: Literal["update_metadata"] = "update_metadata"
    description: str | None = None
    channels: list[str] | None = None


UsergroupAction = Annotated[
    CreateUsergroup | UpdateUsers | UpdateMetadata, Field(discriminator="kind")
]


@dataclass(frozen=True)
class UsergroupError:
    """Why one usergroup (or, with no usergroup, a whole workspace) was not reconciled."""

    workspace: str
    usergroup: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.workspace}/{self.usergroup}" if self.usergroup else self.workspace
        return f"{where}: {self.reason}"


class ReconcileResult(BaseReconcileResult):
    """The outcome of a run (see `BaseReconcileResult`)."""

    actions: list[UsergroupAction] = Field(default_factory=list)
    errors: list[str] = Field(
        default_factory=list, description='"workspace/usergroup: what failed"'
    )
