"""`vcs_file_sync_v1`: file operations in, a task that finds or opens one GitLab merge request."""

from enum import Enum
from typing import Any

import strawberry
from pydantic import ValidationError
from strawberry.experimental import pydantic
from strawberry.types import Info

from gateway.errors import BadUserInput, Forbidden
from resolvers.gitlab.file_sync import TASK_KIND, gitlab_project
from resolvers.gitlab.file_sync_models import (
    SELF_BOUNDED,
    FileSyncRequest,
    FileSyncResult,
    PlannedOperation,
)
from schema.context import RequestContext
from schema.permissions import scope
from schema.tasks import READ_TASK_SCOPES, ReconcileTask, ReconcileTaskResult


@strawberry.enum(name="VcsFileAction_v1")
class FileActionInput(Enum):
    """What one operation does to its file."""

    create = "create"
    update = "update"
    delete = "delete"


@strawberry.input(name="VcsFileOperationInput_v1")
class FileOperationInput:
    """One file change, committed on its own: `content` for create and update, none for
    delete; `path` without `.` or `..`."""

    action: FileActionInput
    path: str
    content: str | None = None
    commit_message: str


@pydantic.type(model=PlannedOperation, name="VcsFileSyncOperation_v1")
class FileSyncOperation:
    """An operation of the run (its content's size, never the content)."""

    action: str
    path: strawberry.auto
    commit_message: strawberry.auto
    content_bytes: strawberry.auto


@pydantic.type(model=FileSyncResult, name="VcsFileSyncResult_v1")
class VcsFileSyncResult(ReconcileTaskResult):
    """What a finished run found or did: `outcome` is `mr_exists`, `mr_created` or (dry run)
    `mr_would_be_created`, null when it failed; `failed` iff `errors` is not empty."""

    status: str
    errors: strawberry.auto
    outcome: str | None
    mr_url: strawberry.auto
    mr_iid: strawberry.auto
    branch: strawberry.auto
    labels: strawberry.auto
    operations: list[FileSyncOperation]


def file_sync_result(result: dict[str, Any]) -> VcsFileSyncResult:
    """The typed view of a `vcs.file-sync` task's JSON result."""
    return VcsFileSyncResult.from_pydantic(FileSyncResult.model_validate(result))


async def vcs_file_sync(
    info: Info[RequestContext, None],
    repo_url: str,
    title: str,
    target_branch: str,
    operations: list[FileOperationInput],
    description: str = "",
    labels: list[str] | None = None,
    auto_merge: bool = False,
    dry_run: bool = True,
) -> ReconcileTask:
    """Submit the run and return its task at once; a real run for the same repository and
    title as one pending or running returns that task."""
    try:
        request = FileSyncRequest(
            dry_run=dry_run,
            repo_url=repo_url,
            title=title,
            description=description,
            target_branch=target_branch,
            operations=[{**strawberry.asdict(op), "action": op.action.value} for op in operations],
            labels=labels or [],
            auto_merge=auto_merge,
        )
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in error.errors(include_url=False)
        )
        raise BadUserInput(f"invalid file-sync input: {problems}") from None
    if not dry_run and not info.context.identity.has_scope(request.required_scope):
        raise Forbidden(f"a real run needs the '{request.required_scope}' scope")
    source, project = gitlab_project(info.context.sources, request.repo_url)
    record = await info.context.tasks.submit(
        TASK_KIND,
        request.model_dump(mode="json"),
        dry_run=dry_run,
        resource=None if dry_run else request.resource(source.account, project),
        request_id=info.context.request_id,
        caller=info.context.identity.subject,
        self_bounded=SELF_BOUNDED,
    )
    return ReconcileTask.of(record)


@strawberry.type
class VcsFileSyncMutation:
    """GitLab file-sync (joined into Mutation by the system registry)."""

    vcs_file_sync_v1: ReconcileTask = strawberry.mutation(
        resolver=vcs_file_sync,
        extensions=scope(*READ_TASK_SCOPES),
        description="Find the open merge request titled `title` in the GitLab repository "
        "`repo_url`, else open it: a branch, one commit per operation, the MR with `labels` "
        "(and `bot/automerge` when `auto_merge`). Returns the task at once; a dry run (the "
        "default) only says what it would do. Real runs need `reconcile:apply`",
    )


TYPES = (VcsFileSyncResult,)
"""The types reached only through interfaces, for `Schema(types=...)`."""
