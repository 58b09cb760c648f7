"""What the Slack usergroups reconcile takes and returns: the request, actions and the result."""

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.tasks.lease import resource_of

DRY_RUN_SCOPE = "reconcile:dry-run"
APPLY_SCOPE = "reconcile:apply"


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


class ReconcileRequest(BaseModel):
    """A reconcile request; a dry run (the default) computes the actions without applying them."""

    model_config = ConfigDict(extra="forbid")

    dry_run: bool = True
    workspaces: list[WorkspaceRequest] = Field(default_factory=list)

    @property
    def required_scope(self) -> str:
        """The token scope a caller needs to submit this request."""
        return DRY_RUN_SCOPE if self.dry_run else APPLY_SCOPE

    @property
    def resource(self) -> str:
        """What two real runs must not change at once: one lease per workspace."""
        return resource_of(f"slack-usergroups:{workspace.name}" for workspace in self.workspaces)


class CreateUsergroup(BaseModel):
    """Create a missing usergroup with its description, channels and members, all in one run."""

    kind: Literal["create"] = "create"
    workspace: str
    usergroup: str
    description: str
    channels: list[str]
    users: list[str]


class UpdateUsers(BaseModel):
    """Replace a usergroup's members with `users` (what is added and removed is listed apart)."""

    kind: Literal["update_users"] = "update_users"
    workspace: str
    usergroup: str
    users: list[str]
    users_to_add: list[str]
    users_to_remove: list[str]
    enable: bool = Field(False, description="re-enable the disabled usergroup first")


class UpdateMetadata(BaseModel):
    """Change what is given of a usergroup's description and default channels (names)."""

    kind: Literal["update_metadata"] = "update_metadata"
    workspace: str
    usergroup: str
    description: str | None = None
    channels: list[str] | None = None
    enable: bool = Field(False, description="re-enable the disabled usergroup first")


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


ReconcileStatus = Literal["success", "failed"]


class ReconcileResult(BaseModel):
    """The outcome of a run: every action (applied unless a dry run), how many applied, errors.

    `pending` and `running` are states of the task that runs it, never of a finished result.
    """

    status: ReconcileStatus
    actions: list[UsergroupAction] = Field(default_factory=list)
    applied_count: int = 0
    errors: list[str] = Field(default_factory=list)
