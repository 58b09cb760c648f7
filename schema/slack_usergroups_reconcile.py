"""`slack_usergroups_reconcile_v1`: desired Slack usergroups in, a reconcile task out."""

import strawberry
from pydantic import ValidationError
from strawberry.types import Info

from gateway.errors import BadUserInput
from gateway.settings import validation_problems
from resolvers.slack.reconcile import TASK_KIND
from resolvers.slack.reconcile_models import ReconcileRequest
from resolvers.slack.source import SlackSource
from schema.context import RequestContext
from schema.permissions import scope
from schema.tasks import READ_TASK_SCOPES, ReconcileTask, submit_reconcile


@strawberry.input(name="SlackUsergroupNotificationsInput_v1")
class NotificationsInput:
    """Messages for the users a real run adds or removes (published as DM events)."""

    add_user: str | None = None
    remove_user: str | None = None


@strawberry.input(name="SlackUsergroupConfigInput_v1")
class UsergroupConfigInput:
    """Desired state: users are org usernames, channels are names (a leading # is ignored)."""

    description: str = ""
    users: list[str] = strawberry.field(default_factory=list)
    channels: list[str] = strawberry.field(default_factory=list)
    notifications: NotificationsInput | None = None


@strawberry.input(name="SlackUsergroupInput_v1")
class UsergroupInput:
    """A usergroup by handle and its desired configuration."""

    handle: str
    config: UsergroupConfigInput


@strawberry.input(name="SlackUsergroupsWorkspaceInput_v1")
class WorkspaceInput:
    """A workspace by name (its token lives in the gateway) and the handles it may touch."""

    name: str
    managed_usergroups: list[str]
    usergroups: list[UsergroupInput]


@strawberry.input(name="SlackUsergroupsReconcileInput_v1")
class ReconcileInput:
    """What the usergroups should be; a dry run (the default) only computes the actions."""

    dry_run: bool = True
    workspaces: list[WorkspaceInput]


async def slack_usergroups_reconcile(
    info: Info[RequestContext, None], input: ReconcileInput
) -> ReconcileTask:
    """Submit the run and return its task at once; real runs of the same workspaces dedup.

    The field admits either reconcile scope; a real run needs `reconcile:apply` as well.
    """
    try:
        request = ReconcileRequest.model_validate(strawberry.asdict(input))
    except ValidationError as error:
        raise BadUserInput(f"invalid reconcile input: {validation_problems(error)}") from None
    for workspace in request.workspaces:
        info.context.sources.get(SlackSource, workspace.name)
    return await submit_reconcile(info, TASK_KIND, request)


@strawberry.type
class SlackUsergroupsMutation:
    """Slack usergroups reconcile (joined into Mutation by the system registry)."""

    slack_usergroups_reconcile_v1: ReconcileTask = strawberry.mutation(
        resolver=slack_usergroups_reconcile,
        extensions=scope(*READ_TASK_SCOPES),
        description="Reconcile Slack usergroups to `input`; returns the task at once (read it "
        "with `reconcile_task_v1`). Real runs need `reconcile:apply`, dry runs "
        "`reconcile:dry-run`; a real run for workspaces that already have one pending or "
        "running returns that task",
    )
