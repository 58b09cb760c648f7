"""Typed results of `slack-usergroups.reconcile` tasks: the actions a run computed or applied."""

from typing import Any

import strawberry


@strawberry.interface(name="SlackUsergroupAction_v1")
class SlackUsergroupAction:
    """One change to one usergroup; usergroups are never deleted or disabled."""

    workspace: str
    usergroup: str = strawberry.field(description="the usergroup's handle")
    enable: bool = strawberry.field(description="the disabled usergroup is re-enabled first")


@strawberry.type(name="SlackUsergroupCreate_v1")
class SlackUsergroupCreate(SlackUsergroupAction):
    """Create the usergroup with its description, channels and users, in the same run."""

    description: str
    channels: list[str]
    users: list[str]


@strawberry.type(name="SlackUsergroupUpdateUsers_v1")
class SlackUsergroupUpdateUsers(SlackUsergroupAction):
    """Set the members to `users` (org usernames)."""

    users: list[str]
    users_to_add: list[str]
    users_to_remove: list[str]


@strawberry.type(name="SlackUsergroupUpdateMetadata_v1")
class SlackUsergroupUpdateMetadata(SlackUsergroupAction):
    """Change the description and/or default channels (null: unchanged)."""

    description: str | None
    channels: list[str] | None


@strawberry.type(name="SlackUsergroupsReconcileResult_v1")
class SlackUsergroupsReconcileResult:
    """What a finished run did: `failed` iff `errors` is not empty."""

    status: str
    actions: list[SlackUsergroupAction]
    applied_count: int
    errors: list[str] = strawberry.field(description='"workspace/usergroup: what failed"')


def _action(data: dict[str, Any]) -> SlackUsergroupAction:
    common = {
        "workspace": data["workspace"],
        "usergroup": data["usergroup"],
        "enable": bool(data.get("enable", False)),
    }
    if data["kind"] == "create":
        return SlackUsergroupCreate(
            **common,
            description=data["description"],
            channels=data["channels"],
            users=data["users"],
        )
    if data["kind"] == "update_users":
        return SlackUsergroupUpdateUsers(
            **common,
            users=data["users"],
            users_to_add=data["users_to_add"],
            users_to_remove=data["users_to_remove"],
        )
    return SlackUsergroupUpdateMetadata(
        **common, description=data.get("description"), channels=data.get("channels")
    )


def reconcile_result(result: dict[str, Any]) -> SlackUsergroupsReconcileResult:
    """The typed view of a `slack-usergroups.reconcile` task's JSON result."""
    return SlackUsergroupsReconcileResult(
        status=result["status"],
        actions=[_action(action) for action in result.get("actions", [])],
        applied_count=int(result.get("applied_count", 0)),
        errors=list(result.get("errors", [])),
    )


TYPES = [SlackUsergroupCreate, SlackUsergroupUpdateUsers, SlackUsergroupUpdateMetadata]
"""The concrete action types, for `Schema(types=...)`."""
