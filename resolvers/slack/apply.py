"""Applying usergroup actions to one Slack workspace: writes, cache updates, events, errors."""

from collections.abc import Mapping, Sequence

from gateway.errors import GatewayError, UpstreamError
from gateway.events import EventPublisher
from gateway.events.action_log import ActionLog
from resolvers.slack.api import SlackUsergroup
from resolvers.slack.reconcile_models import (
    CreateUsergroup,
    Notifications,
    UpdateMetadata,
    UpdateUsers,
    UsergroupAction,
    UsergroupError,
)
from resolvers.slack.source import ChannelDirectory, SlackSource, UserDirectory, Usergroups

EVENT_PREFIX = "slack-usergroups"


class ActionFailed(Exception):
    """An action that cannot be completed, for a reason the upstream did not raise itself."""


def reason(error: GatewayError | ActionFailed) -> str:
    """What failed, as the caller may read it."""
    return error.message if isinstance(error, GatewayError) else str(error)


class EventLog(ActionLog):
    """Publishes the events of one run; a failing publisher is logged, never raised.

    `origin` (the task's `task_id` and its submitting `request_id`) joins every payload.
    """

    def __init__(self, publisher: EventPublisher, origin: Mapping[str, str] | None = None) -> None:
        super().__init__(publisher, EVENT_PREFIX, origin)

    async def error(self, error: UsergroupError) -> None:
        """Publish one `slack-usergroups.error`."""
        payload = {"workspace": error.workspace, "usergroup": error.usergroup, "error": str(error)}
        await self.publish("error", payload)


class WorkspaceWriter:
    """Applies one workspace's actions with that workspace's own source and client only.

    `usergroups`, `users` and `channels` are the current state the actions were computed from.
    """

    def __init__(
        self,
        source: SlackSource,
        usergroups: Usergroups,
        users: UserDirectory,
        channels: ChannelDirectory,
        notifications: Mapping[str, Notifications],
        events: EventLog,
    ) -> None:
        self.source = source
        self.usergroups = usergroups
        self.users = users
        self.channels = channels
        self.notifications = notifications
        self.events = events

    async def apply(self, actions: Sequence[UsergroupAction]) -> tuple[int, list[UsergroupError]]:
        """Apply `actions` in order; how many were applied, and one error per failed action."""
        applied = 0
        errors: list[UsergroupError] = []
        for action in actions:
            try:
                await self._apply(action)
            except (GatewayError, ActionFailed) as error:
                failed = UsergroupError(
                    action.workspace, action.usergroup, f"{action.kind} failed: {reason(error)}"
                )
                errors.append(failed)
                await self.events.error(failed)
                continue
            applied += 1
            await self.events.publish(action.kind, action.model_dump(mode="json"))
            await self._notify(action)
        return applied, errors

    async def _apply(self, action: UsergroupAction) -> None:
        if isinstance(action, CreateUsergroup):
            await self._create(action)
            return
        group_id = self.usergroups[action.usergroup]["id"]
        if action.enable:
            await self.source.put_usergroup(await self.source.api.enable_usergroup(group_id))
        if isinstance(action, UpdateUsers):
            await self.source.put_usergroup(await self._set_members(group_id, action.users))
        else:
            await self._update_metadata(group_id, action)

    async def _create(self, action: CreateUsergroup) -> None:
        created = await self.source.api.create_usergroup(
            action.usergroup,
            action.usergroup,
            action.description,
            self._channel_ids(action.channels),
        )
        await self.source.put_usergroup(created)
        if not action.users:
            return
        try:
            await self.source.put_usergroup(await self._set_members(created.id, action.users))
        except (GatewayError, ActionFailed) as error:
            raise ActionFailed(
                f"created, but setting its members failed: {reason(error)}"
            ) from None

    async def _update_metadata(self, group_id: str, action: UpdateMetadata) -> None:
        channels = None if action.channels is None else self._channel_ids(action.channels)
        updated = await self.source.api.update_usergroup(
            group_id, description=action.description, channels=channels
        )
        await self.source.put_usergroup(updated)

    async def _set_members(self, group_id: str, users: Sequence[str]) -> SlackUsergroup:
        """Replace the members; on `invalid_users` refresh the cached users and retry once."""
        try:
            return await self.source.api.update_usergroup_users(group_id, self._user_ids(users))
        except UpstreamError as error:
            if error.extensions.get("error") != "invalid_users":
                raise
        self.users = (await self.source.refresh_users()).value
        return await self.source.api.update_usergroup_users(group_id, self._user_ids(users))

    def _user_ids(self, users: Sequence[str]) -> list[str]:
        members = self.users["members"]
        ids = [members[name]["id"] for name in users if name in members]
        if not ids:
            raise ActionFailed(
                "no desired user is an active Slack user any more; Slack refuses an empty "
                "member list, members kept"
            )
        return ids

    def _channel_ids(self, names: Sequence[str]) -> list[str]:
        by_name = self.channels["by_name"]
        return [by_name[name] for name in names]

    async def _notify(self, action: UsergroupAction) -> None:
        """Publish the DM notifications the usergroup's config asks for."""
        notifications = self.notifications.get(action.usergroup)
        if notifications is None:
            return
        if isinstance(action, CreateUsergroup):
            added, removed = action.users, []
        elif isinstance(action, UpdateUsers):
            added, removed = action.users_to_add, action.users_to_remove
        else:
            return
        for name, users, message in (
            ("notify_add_user", added, notifications.add_user),
            ("notify_remove_user", removed, notifications.remove_user),
        ):
            if users and message:
                await self.events.publish(
                    name,
                    {
                        "workspace": action.workspace,
                        "usergroup": action.usergroup,
                        "users": users,
                        "user_ids": [self._user_id(user) for user in users],
                        "message": message,
                    },
                )

    def _user_id(self, org_username: str) -> str | None:
        member = self.users["members"].get(org_username)
        return member["id"] if member else None
