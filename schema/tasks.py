"""Reconcile tasks: `reconcile_task_v1` as a (blocking) query and as a subscription, and how
every system's reconcile mutation submits one."""

import datetime as dt
from collections.abc import AsyncGenerator
from enum import Enum
from typing import cast

import strawberry
from strawberry.types import Info

from gateway.errors import BadUserInput, Forbidden
from gateway.tasks.reconcile import APPLY_SCOPE, DRY_RUN_SCOPE, BaseReconcileRequest
from gateway.tasks.record import TaskRecord
from schema.context import RequestContext
from schema.scalars import JSON

MAX_WAIT_SECONDS = 300

# Reading a task needs either reconcile scope: dry-run callers read their dry runs' actions,
# apply callers follow their real runs; task ids are unguessable (uuid4).
READ_TASK_SCOPES = (DRY_RUN_SCOPE, APPLY_SCOPE)


@strawberry.enum(name="ReconcileTaskStatus_v1")
class ReconcileTaskStatus(Enum):
    """Where a task is: `success` and `failed` are final."""

    pending = "pending"
    running = "running"
    success = "success"
    failed = "failed"


@strawberry.interface(name="ReconcileTaskResult_v1")
class ReconcileTaskResult:
    """The typed result of a finished task: each kind's type implements it (see
    `SystemSchema.results`); `failed` iff `errors` is not empty."""

    status: str
    errors: list[str]


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

    @strawberry.field(  # type: ignore[untyped-decorator]
        description="`result` as the type its kind declares (e.g. "
        "`SlackUsergroupsReconcileResult_v1`), once the task succeeded"
    )
    def typed_result(self, info: Info[RequestContext, None]) -> ReconcileTaskResult | None:
        """`result` through the converter its system registered for this kind, if any."""
        if self.result is None:
            return None
        for system in info.context.sources.systems.values():
            convert = system.graphql.results.get(self.kind)
            if convert is not None:
                return cast(ReconcileTaskResult, convert(dict(self.result)))  # type: ignore[call-overload]
        return None

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


async def submit_reconcile(
    info: Info[RequestContext, None], kind: str, request: BaseReconcileRequest
) -> ReconcileTask:
    """Submit `request` as a task of `kind` and return the task at once; FORBIDDEN for a real
    run without its scope. A real run of resources one already pending or running holds returns
    that task (or CONFLICT when they only overlap); dry runs never dedup."""
    if not request.dry_run and not info.context.identity.has_scope(request.required_scope):
        raise Forbidden(f"a real run needs the '{request.required_scope}' scope")
    record = await info.context.tasks.submit(
        kind,
        request.model_dump(mode="json"),
        dry_run=request.dry_run,
        resource=None if request.dry_run else request.resource,
        request_id=info.context.request_id,
        caller=info.context.identity.subject,
        self_bounded=request.self_bounded,
    )
    return ReconcileTask.of(record)
