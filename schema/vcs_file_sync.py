"""`vcs_file_sync_v1`: file operations in, a task that finds or opens one GitLab merge request."""

from enum import Enum
from typing import Any

import strawberry
from pydantic import ValidationError
from strawberry.experimental import pydantic
from strawberry.types import Info

from gateway.errors import BadUserInput
from gateway.settings import validation_problems
from resolvers.gitlab.file_sync import TASK_KIND, gitlab_project
from resolvers.gitlab.file_sync_models import FileSyncRequest, FileSyncResult, PlannedOperation
from schema.context import RequestContext
from schema.permissions import scope
from schema.tasks import READ_TASK_SCOPES, ReconcileTask, ReconcileTaskResult, submit_reconcile


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


@strawberry.input(name="VcsFileSyncInput_v1")
class VcsFileSyncInput:
    """One merge request to find or open; a dry run (the default) only says what it would do."""

    dry_run: bool = True
    repo_url: str
    title: str
    description: str = ""
    target_branch: str
    operations: list[FileOperationInput]
    labels: list[str] | None = None
    auto_merge: bool = False


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


def file_sync_request(input: VcsFileSyncInput) -> FileSyncRequest:
    """The request `input` asks for, or BAD_USER_INPUT naming the problems (never the input)."""
    try:
        return FileSyncRequest(
            dry_run=input.dry_run,
            repo_url=input.repo_url,
            title=input.title,
            description=input.description,
            target_branch=input.target_branch,
            operations=[
                {**strawberry.asdict(op), "action": op.action.value} for op in input.operations
            ],
            labels=input.labels or [],
            auto_merge=input.auto_merge,
        )
    except ValidationError as error:
        raise BadUserInput(f"invalid file-sync input: {validation_problems(error)}") from None


async def vcs_file_sync(info: Info[RequestContext, None], input: VcsFileSyncInput) -> ReconcileTask:
    """Submit the run and return its task at once; a real run for the same repository and
    title as one pending or running returns that task."""
    request = file_sync_request(input)
    gitlab_project(info.context.sources, request.repo_url)
    return await submit_reconcile(info, TASK_KIND, request)


@strawberry.type
class VcsFileSyncMutation:
    """GitLab file-sync (joined into Mutation by the system registry)."""

    vcs_file_sync_v1: ReconcileTask = strawberry.mutation(
        resolver=vcs_file_sync,
        extensions=scope(*READ_TASK_SCOPES),
        description="Find the open merge request titled `input.title` in the GitLab repository "
        "`input.repo_url`, else open it: a branch, one commit per operation, the MR with "
        "`labels` (and `bot/automerge` when `auto_merge`). Returns the task at once (read it "
        "with `reconcile_task_v1`); a dry run (the default) only says what it would do. Real "
        "runs need `reconcile:apply`, dry runs `reconcile:dry-run`; a real run for a repository "
        "and title that already have one pending or running returns that task",
    )


TYPES = (VcsFileSyncResult,)
"""The types reached only through interfaces, for `Schema(types=...)`."""
