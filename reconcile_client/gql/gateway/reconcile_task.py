"""Models of `reconcile_task.gql`: a task's status and, once done, its typed actions."""

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from reconcile_client.operations import Operation


class UsergroupCreate(BaseModel):
    """Create the usergroup with its description, channels and users."""

    typename: Literal["SlackUsergroupCreate_v1"] = Field(alias="__typename")
    workspace: str
    usergroup: str
    enable: bool
    description: str
    channels: list[str]
    users: list[str]


class UsergroupUpdateUsers(BaseModel):
    """Set the members to `users`."""

    typename: Literal["SlackUsergroupUpdateUsers_v1"] = Field(alias="__typename")
    workspace: str
    usergroup: str
    enable: bool
    users: list[str]
    users_to_add: list[str]
    users_to_remove: list[str]


class UsergroupUpdateMetadata(BaseModel):
    """Change the description and/or channels (None: unchanged)."""

    typename: Literal["SlackUsergroupUpdateMetadata_v1"] = Field(alias="__typename")
    workspace: str
    usergroup: str
    enable: bool
    new_description: str | None
    new_channels: list[str] | None


UsergroupAction = Annotated[
    UsergroupCreate | UsergroupUpdateUsers | UsergroupUpdateMetadata,
    Field(discriminator="typename"),
]


class SlackUsergroupsResult(BaseModel):
    """What a finished slack-usergroups reconcile task computed and applied."""

    status: str
    applied_count: int
    errors: list[str]
    actions: list[UsergroupAction]


class ReconcileTask(BaseModel):
    """A task: `pending`, `running`, `success` or `failed`."""

    id: str
    status: str
    error: str | None
    slack_usergroups: SlackUsergroupsResult | None


class ReconcileTaskData(BaseModel):
    """Data of query ReconcileTask."""

    reconcile_task_v1: ReconcileTask


OPERATION = Operation("gateway/reconcile_task.gql", ReconcileTaskData)
