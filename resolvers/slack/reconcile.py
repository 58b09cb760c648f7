"""The Slack usergroups reconcile service: current state, diff, and (unless a dry run) apply."""

import asyncio
from collections.abc import Mapping

from gateway.errors import GatewayError
from gateway.events import EventPublisher
from gateway.registry import Sources
from gateway.tasks.reconcile import ReconcileKind, refuse_repeated
from resolvers.slack.apply import EventLog, WorkspaceWriter
from resolvers.slack.diff import compute_actions
from resolvers.slack.reconcile_models import (
    ReconcileRequest,
    ReconcileResult,
    UsergroupAction,
    UsergroupError,
    WorkspaceRequest,
)
from resolvers.slack.source import SlackSource

TASK_KIND = "slack-usergroups.reconcile"

WorkspaceOutcome = tuple[list[UsergroupAction], int, list[UsergroupError]]


async def reconcile(
    request: ReconcileRequest,
    sources: Sources,
    publisher: EventPublisher,
    origin: Mapping[str, str] | None = None,
) -> ReconcileResult:
    """Reconcile every workspace of `request`, each with its own source; failed iff errors.

    Unknown or repeated workspace names are BAD_USER_INPUT before anything is read or written;
    `origin` (task and request ids) joins every event's payload.
    """
    names = [workspace.name for workspace in request.workspaces]
    refuse_repeated("workspaces", names)
    workspace_sources = [sources.get(SlackSource, name) for name in names]
    events = EventLog(publisher, origin)
    outcomes = await asyncio.gather(
        *(
            _reconcile_workspace(workspace, source, request.dry_run, events)
            for workspace, source in zip(request.workspaces, workspace_sources, strict=True)
        )
    )
    return ReconcileResult.joined(outcomes)


async def _reconcile_workspace(
    workspace: WorkspaceRequest, source: SlackSource, dry_run: bool, events: EventLog
) -> WorkspaceOutcome:
    """One workspace's actions, how many were applied and its errors."""
    try:
        users, usergroups, channels = await asyncio.gather(
            source.users(), source.usergroups(), source.channels()
        )
    except GatewayError as error:
        failed = UsergroupError(
            workspace.name, "", f"reading the current state failed: {error.message}"
        )
        if not dry_run:
            await events.error(failed)
        return [], 0, [failed]
    actions, errors = compute_actions(workspace, usergroups.value, users.value, channels.value)
    if dry_run:
        return actions, 0, errors
    for refused in errors:
        await events.error(refused)
    writer = WorkspaceWriter(
        source,
        usergroups.value,
        users.value,
        channels.value,
        {
            usergroup.handle: usergroup.config.notifications
            for usergroup in workspace.usergroups
            if usergroup.config.notifications is not None
        },
        events,
    )
    applied, apply_errors = await writer.apply(actions)
    return actions, applied, errors + apply_errors


class SlackUsergroupsReconcile(ReconcileKind[ReconcileRequest]):
    """The `slack-usergroups.reconcile` task: a JSON request in, the JSON result out."""

    request_model = ReconcileRequest

    async def run(
        self, request: ReconcileRequest, origin: Mapping[str, str] | None
    ) -> ReconcileResult:
        """Reconcile `request` on the process's sources."""
        return await reconcile(request, self.sources, self.publisher, origin)
