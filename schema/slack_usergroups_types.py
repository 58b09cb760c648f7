"""Typed results of `slack-usergroups.reconcile` tasks, derived from the service's pydantic
models (resolvers/slack/reconcile_models.py): the actions a run computed or applied."""

from typing import Any

import strawberry
from strawberry.experimental import pydantic

from resolvers.slack.reconcile_models import (
    ActionTarget,
    CreateUsergroup,
    ReconcileResult,
    UpdateMetadata,
    UpdateUsers,
)
from schema.tasks import ReconcileTaskResult


@pydantic.interface(model=ActionTarget, name="SlackUsergroupAction_v1")
class SlackUsergroupAction:
    """One change to one usergroup; usergroups are never deleted or disabled."""

    workspace: strawberry.auto
    usergroup: strawberry.auto
    enable: strawberry.auto


# The ignores: Strawberry's mypy plugin types `from_pydantic` by each class's own model.
@pydantic.type(model=CreateUsergroup, name="SlackUsergroupCreate_v1")
class SlackUsergroupCreate(SlackUsergroupAction):  # type: ignore[override]
    """Create the usergroup with its description, channels and users, in the same run."""

    description: strawberry.auto
    channels: strawberry.auto
    users: strawberry.auto


@pydantic.type(model=UpdateUsers, name="SlackUsergroupUpdateUsers_v1")
class SlackUsergroupUpdateUsers(SlackUsergroupAction):  # type: ignore[override]
    """Set the members to `users` (org usernames)."""

    users: strawberry.auto
    users_to_add: strawberry.auto
    users_to_remove: strawberry.auto


@pydantic.type(model=UpdateMetadata, name="SlackUsergroupUpdateMetadata_v1")
class SlackUsergroupUpdateMetadata(SlackUsergroupAction):  # type: ignore[override]
    """Change the description and/or default channels (null: unchanged)."""

    description: strawberry.auto
    channels: strawberry.auto


@pydantic.type(model=ReconcileResult, name="SlackUsergroupsReconcileResult_v1")
class SlackUsergroupsReconcileResult(ReconcileTaskResult):
    """What a finished run did: `failed` iff `errors` is not empty."""

    status: str
    errors: strawberry.auto
    actions: list[SlackUsergroupAction]
    applied_count: strawberry.auto


def reconcile_result(result: dict[str, Any]) -> SlackUsergroupsReconcileResult:
    """The typed view of a `slack-usergroups.reconcile` task's JSON result."""
    return SlackUsergroupsReconcileResult.from_pydantic(ReconcileResult.model_validate(result))


TYPES = (
    SlackUsergroupCreate,
    SlackUsergroupUpdateUsers,
    SlackUsergroupUpdateMetadata,
    SlackUsergroupsReconcileResult,
)
"""The types reached only through interfaces, for `Schema(types=...)`."""
