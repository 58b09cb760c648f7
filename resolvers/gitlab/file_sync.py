"""The `vcs.file-sync` task: find the open merge request with the title, else make it.

A real run holds the task lease on (repository, title) from the lookup to the new merge
request, so concurrent calls for the same title are one run and make one merge request.
"""

import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from gateway.errors import BadUserInput, GatewayError, Timeout, UpstreamUnavailable
from gateway.events.action_log import ActionLog
from gateway.registry import Sources, repo_of_url
from gateway.tasks.kinds import TaskContext
from gateway.tasks.reconcile import ReconcileKind
from resolvers.gitlab.api import GitLabMergeRequest
from resolvers.gitlab.file_sync_models import (
    FileSyncRequest,
    FileSyncResult,
    PlannedOperation,
)
from resolvers.gitlab.source import SYSTEM, GitLabSource

TASK_KIND = "vcs.file-sync"
EVENT_PREFIX = "vcs"
BRANCH_PREFIX = "qontract-gateway-file-sync-"


def gitlab_project(sources: Sources, repo_url: str) -> tuple[GitLabSource, str]:
    """The GitLab instance serving `repo_url` (by host) and the project's full path;
    BAD_USER_INPUT for a host no GitLab account serves."""
    host, project = repo_of_url(repo_url)
    system, source = sources.repository_source(host, project.partition("/")[0])
    if system != SYSTEM or not isinstance(source, GitLabSource):
        raise BadUserInput(f"file-sync needs a GitLab repository; {host} is served by {system}")
    return source, project


def planned(request: FileSyncRequest) -> list[PlannedOperation]:
    """The request's operations as the result lists them (sizes, never contents)."""
    return [
        PlannedOperation(
            action=op.action,
            path=op.path,
            commit_message=op.commit_message,
            content_bytes=len(op.content.encode()) if op.content is not None else 0,
        )
        for op in request.operations
    ]


class FileSync:
    """One run against one GitLab project; `branch` is the run's own (named after its task,
    so a redelivered run finds and replaces what a lost one left)."""

    def __init__(
        self,
        request: FileSyncRequest,
        source: GitLabSource,
        project: str,
        events: ActionLog,
        branch: str,
    ) -> None:
        self.request = request
        self.api = source.api
        self.project = project
        self.events = events
        self.branch = branch

    def _result(self, **found: Any) -> FileSyncResult:
        status = "failed" if found.get("errors") else "success"
        labels = self.request.merge_request_labels
        return FileSyncResult(
            status=status, labels=labels, operations=planned(self.request), **found
        )

    async def run(self, redelivered: bool) -> FileSyncResult:
        """Find or (unless a dry run) create the merge request; failures are the result's
        errors, and a failed creation leaves no branch behind."""
        request = self.request
        try:
            existing = await self.api.open_merge_requests(self.project, request.title)
            if existing:
                found = existing[0]
                return self._result(outcome="mr_exists", mr_url=found.web_url, mr_iid=found.iid)
            if request.dry_run:
                return await self._plan()
            if redelivered:
                await self.api.delete_branch(self.project, self.branch)
        except GatewayError as error:
            return await self._failed(error.message)
        try:
            await self.api.create_branch(self.project, self.branch, request.target_branch)
            for op in request.operations:
                await self.api.commit(
                    self.project, self.branch, op.commit_message, op.action, op.path, op.content
                )
            created = await self._open_merge_request()
        except GatewayError as error:
            return await self._failed(error.message, await self._remove_branch())
        result = self._result(
            outcome="mr_created", mr_url=created.web_url, mr_iid=created.iid, branch=self.branch
        )
        await self.events.publish(
            "file-sync",
            {
                "repo_url": request.repo_url,
                "title": request.title,
                "mr_url": created.web_url,
                "mr_iid": created.iid,
                "branch": self.branch,
                "target_branch": request.target_branch,
                "labels": result.labels,
                "operations": [op.model_dump() for op in result.operations],
            },
        )
        return result

    async def _open_merge_request(self) -> GitLabMergeRequest:
        """Open the merge request; when its answer is lost (a timeout or an outage, after
        which GitLab may have made it), the open one with the title is looked up first."""
        request = self.request
        try:
            return await self.api.create_merge_request(
                self.project,
                self.branch,
                request.target_branch,
                request.title,
                request.description,
                request.merge_request_labels,
            )
        except (Timeout, UpstreamUnavailable):
            made = await self.api.open_merge_requests(self.project, request.title)
            if made:
                return made[0]
            raise

    async def _plan(self) -> FileSyncResult:
        """A dry run: the target branch must exist; the MR would be created."""
        if not await self.api.ref_exists(self.project, self.request.target_branch):
            return self._result(
                errors=[
                    f"{self.request.repo_url}: target branch "
                    f"{self.request.target_branch!r} does not exist"
                ]
            )
        return self._result(outcome="mr_would_be_created")

    async def _remove_branch(self) -> str | None:
        """Delete the run's branch; what failed, if that failed too."""
        try:
            await self.api.delete_branch(self.project, self.branch)
        except GatewayError as error:
            return f"removing branch {self.branch} failed: {error.message}"
        return None

    async def _failed(self, reason: str, cleanup: str | None = None) -> FileSyncResult:
        """The failed result (and, on a real run, its `vcs.file-sync.error` event)."""
        errors = [f"{self.request.repo_url}: {reason}"]
        if cleanup is not None:
            errors.append(f"{self.request.repo_url}: {cleanup}")
        if not self.request.dry_run:
            await self.events.publish(
                "file-sync.error",
                {"repo_url": self.request.repo_url, "title": self.request.title, "errors": errors},
            )
        return self._result(errors=errors)


class FileSyncTask(ReconcileKind[FileSyncRequest]):
    """The `vcs.file-sync` task kind: a JSON request in, the JSON result out; its branch is
    named after the task."""

    request_model = FileSyncRequest

    async def run(self, request: FileSyncRequest, origin: Mapping[str, str] | None) -> BaseModel:
        """A first attempt (`origin` names the task, hence the branch; without one, the run
        gets a branch of its own)."""
        task_id = (origin or {}).get("task_id") or str(uuid.uuid4())
        return await self.sync(request, origin, task_id, redelivered=False)

    async def task(self, payload: dict[str, Any], context: TaskContext) -> dict[str, Any]:
        """The registered task function: a later attempt is a redelivery of a lost run, whose
        branch (the task's) it replaces."""
        result = await self.sync(
            self.validated(payload, context.dry_run),
            context.origin,
            context.task_id,
            context.attempt > 1,
        )
        return result.model_dump(mode="json")

    async def sync(
        self,
        request: FileSyncRequest,
        origin: Mapping[str, str] | None,
        task_id: str,
        redelivered: bool,
    ) -> FileSyncResult:
        """Run `request` on the GitLab instance serving its repository."""
        source, project = gitlab_project(self.sources, request.repo_url)
        events = ActionLog(self.publisher, EVENT_PREFIX, origin)
        run = FileSync(request, source, project, events, BRANCH_PREFIX + task_id)
        return await run.run(redelivered)
