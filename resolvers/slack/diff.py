"""The pure diff of the Slack usergroups reconcile: desired versus current state, as actions."""

from collections.abc import Iterable

from resolvers.slack.reconcile_models import (
    CreateUsergroup,
    DesiredUsergroup,
    UpdateMetadata,
    UpdateUsers,
    UsergroupAction,
    UsergroupError,
    WorkspaceRequest,
)
from resolvers.slack.source import ChannelDirectory, UserDirectory, UsergroupRecord, Usergroups


def channel_names(names: Iterable[str], channels: ChannelDirectory) -> list[str]:
    """Known channel names in the given order, a leading `#` dropped, each once."""
    known = channels["by_name"]
    stripped = (name.removeprefix("#") for name in names)
    return list(dict.fromkeys(name for name in stripped if name in known))


def active_members(user_ids: Iterable[str], users: UserDirectory) -> set[str]:
    """The org usernames of the active users among `user_ids` (`U…` or `W…`)."""
    ids = users["ids"]
    return {ids[user_id] for user_id in user_ids if user_id in ids}


def compute_actions(
    desired: WorkspaceRequest,
    current_usergroups: Usergroups,
    users_directory: UserDirectory,
    channels_directory: ChannelDirectory,
) -> tuple[list[UsergroupAction], list[UsergroupError]]:
    """The actions that bring one workspace to `desired`, and the usergroups refused, as errors.

    Unknown or deleted users and unknown channels are dropped first. Nothing is ever deleted or
    disabled; a disabled usergroup that must change is re-enabled by its first action.
    """
    managed = set(desired.managed_usergroups)
    seen: set[str] = set()
    actions: list[UsergroupAction] = []
    errors: list[UsergroupError] = []
    members = users_directory["members"]
    for usergroup in desired.usergroups:
        if usergroup.handle in seen:
            errors.append(
                UsergroupError(
                    desired.name, usergroup.handle, "listed more than once; the first is reconciled"
                )
            )
            continue
        seen.add(usergroup.handle)
        if usergroup.handle not in managed:
            errors.append(
                UsergroupError(
                    desired.name,
                    usergroup.handle,
                    "refused: the handle is not in managed_usergroups",
                )
            )
            continue
        users = sorted({name for name in usergroup.config.users if name in members})
        channels = channel_names(usergroup.config.channels, channels_directory)
        current = current_usergroups.get(usergroup.handle)
        if current is None:
            actions.append(
                CreateUsergroup(
                    workspace=desired.name,
                    usergroup=usergroup.handle,
                    description=usergroup.config.description,
                    channels=channels,
                    users=users,
                )
            )
            continue
        changes, error = _changes(
            desired.name, usergroup, current, users, channels, users_directory, channels_directory
        )
        if error:
            errors.append(UsergroupError(desired.name, usergroup.handle, error))
        if changes and current["disabled"]:
            changes[0] = changes[0].model_copy(update={"enable": True})
        actions.extend(changes)
    return actions, errors


def _changes(
    workspace: str,
    usergroup: DesiredUsergroup,
    current: UsergroupRecord,
    users: list[str],
    channels: list[str],
    users_directory: UserDirectory,
    channels_directory: ChannelDirectory,
) -> tuple[list[UpdateUsers | UpdateMetadata], str]:
    """The updates of an existing usergroup, and why its members must stay, if they must."""
    changes: list[UpdateUsers | UpdateMetadata] = []
    error = ""
    wanted = set(users)
    members = active_members(current["users"], users_directory)
    if wanted != members:
        if wanted:
            changes.append(
                UpdateUsers(
                    workspace=workspace,
                    usergroup=usergroup.handle,
                    users=users,
                    users_to_add=sorted(wanted - members),
                    users_to_remove=sorted(members - wanted),
                )
            )
        else:
            error = (
                f"cannot remove all {len(members)} members: Slack refuses an empty member list "
                "and no desired user is an active Slack user; members kept"
            )
    by_name = channels_directory["by_name"]
    description = usergroup.config.description
    new_description = description if description != current["description"] else None
    new_channels = channels if {by_name[n] for n in channels} != set(current["channels"]) else None
    if new_description is not None or new_channels is not None:
        changes.append(
            UpdateMetadata(
                workspace=workspace,
                usergroup=usergroup.handle,
                description=new_description,
                channels=new_channels,
            )
        )
    return changes, error
