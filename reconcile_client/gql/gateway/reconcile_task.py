"""Models of `reconcile_task.gql`: a task's status and, once done, its result."""

from typing import Literal

from pydantic import BaseModel, Json

from reconcile_client.operations import Operation


class UsergroupAction(BaseModel):
    """One action the gateway computed (and, in a real run, applied)."""

    action_type: Literal["create", "update_users", "update_metadata"]
    workspace: str
    usergroup: str
    users_to_add: list[str] = []
    users_to_remove: list[str] = []
    description: str | None = None
    channels: list[str] | None = None


class SlackUsergroupsResult(BaseModel):
    """The result JSON of a slack-usergroups reconcile task."""

    status: str
    actions: list[UsergroupAction] = []
    applied_count: int = 0
    errors: list[str] = []


class ReconcileTask(BaseModel):
    """A task: `pending`, `running`, `success` or `failed`."""

    id: str
    status: str
    result: Json[SlackUsergroupsResult] | None
    error: str | None


class ReconcileTaskData(BaseModel):
    """Data of query ReconcileTask."""

    reconcile_task_v1: ReconcileTask


OPERATION = Operation("gateway/reconcile_task.gql", ReconcileTaskData)
