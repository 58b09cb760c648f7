"""Reconcile tasks: `reconcile_task_v1` as a (blocking) query and as a subscription."""

import datetime as dt
from collections.abc import AsyncGenerator
from enum import Enum

import strawberry
from strawberry.types import Info

from gateway.errors import BadUserInput
from gateway.tasks.record import TaskRecord
from resolvers.slack.reconcile import TASK_KIND as SLACK_USERGROUPS_RECONCILE
from schema.context import RequestContext
from schema.scalars import JSON
from schema.slack_usergroups_types import SlackUsergroupsReconcileResult, reconcile_result

MAX_WAIT_SECONDS = 300

# Reading a task needs either reconcile scope: dry-run callers read their dry runs' actions,
# apply callers follow their real runs; task ids are unguessable (uuid4).
READ_TASK_SCOPES = ("reconcile:dry-run", "reconcile:apply")


@strawberry.enum(name="ReconcileTaskStatus_v1")
class ReconcileTaskStatus(Enum):
    """Where a task is: `success` and `failed` are final."""

    pending = "pending"
    running = "running"
    success = "success"
    failed = "failed"


@strawberry.type(name="ReconcileTask_v1")
class ReconcileTask:
    """A submitted reconcile task: its status and, once ended, its result or error."""

    id: str
    kind: str = strawberry.field(description="e.g. `slack-usergroups.reconcile`")
    status: ReconcileTaskStatus
    dry_run: bool
    submitted_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    result: JSON | None = strawberry.field(description="The task's result, once it succeeded")
    error: str | None

    @strawberry.field(description="The typed result of a `slack-usergroups.reconcile` task")  # type: ignore[untyped-decorator]
    def slack_usergroups(self) -> SlackUsergroupsReconcileResult | None:
        """`result` as typed actions, for that kind once it ended with a result."""
        if self.kind != SLACK_USERGROUPS_RECONCILE or self.result is None:
            return None
        return reconcile_result(dict(self.result))  # type: ignore[call-overload]

    @classmethod
    def of(cls, record: TaskRecord) -> "ReconcileTask":
        """The GraphQL view of a task record."""
        return cls(
            id=record.id,
            kind=record.kind,
            status=ReconcileTaskStatus(record.status.value),
            dry_run=record.dry_run,
            submitted_at=record.submitted_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
            result=None if record.result is None else JSON(record.result),
            error=record.error,
        )


async def reconcile_task(
    info: Info[RequestContext, None],
    id: str,
    wait_seconds: int | None = 0,
) -> ReconcileTask:
    """Resolve `reconcile_task_v1`: the task, after waiting up to `wait_seconds` for its end."""
    wait_seconds = wait_seconds or 0
    if not 0 <= wait_seconds <= MAX_WAIT_SECONDS:
        raise BadUserInput(f"wait_seconds must be between 0 and {MAX_WAIT_SECONDS}")
    tasks = info.context.tasks
    record = await (tasks.wait(id, wait_seconds) if wait_seconds else tasks.get(id))
    return ReconcileTask.of(record)


async def reconcile_task_changes(
    info: Info[RequestContext, None], id: str
) -> AsyncGenerator[ReconcileTask, None]:
    """Resolve the `reconcile_task_v1` subscription: each status change, until the task ends."""
    async for record in info.context.tasks.watch(id):
        yield ReconcileTask.of(record)
