"""What the notifier says about an event: direct messages and one channel line, per event type."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.events import Event

MAX_LIST_ITEMS = 20
MAX_VALUE_CHARACTERS = 200
MAX_GENERIC_FIELDS = 10


@dataclass(frozen=True)
class Message:
    """One Slack message: to `channel` (name or id) or to `user` (org username) of `workspace`.

    `key` names it within its event (stable across redeliveries), so it is sent once.
    """

    key: str
    workspace: str
    text: str
    channel: str | None = None
    user: str | None = None


def escaped(value: Any) -> str:
    """`value` as Slack mrkdwn text that cannot mention, link or format: & < > escaped, bounded."""
    text = str(value)
    if len(text) > MAX_VALUE_CHARACTERS:
        text = text[:MAX_VALUE_CHARACTERS] + "…"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def names(values: Any) -> str:
    """A bounded, escaped, comma-separated list (`none` when empty)."""
    items = list(values) if isinstance(values, list) else []
    if not items:
        return "none"
    shown = ", ".join(escaped(item) for item in items[:MAX_LIST_ITEMS])
    more = len(items) - MAX_LIST_ITEMS
    return shown + (f" and {more} more" if more > 0 else "")


def _create(payload: Mapping[str, Any]) -> str:
    return (
        f"created usergroup @{escaped(payload.get('usergroup'))} "
        f"with users {names(payload.get('users'))} and channels {names(payload.get('channels'))}"
    )


def _update_users(payload: Mapping[str, Any]) -> str:
    return (
        f"usergroup @{escaped(payload.get('usergroup'))}: "
        f"added {names(payload.get('users_to_add'))}, "
        f"removed {names(payload.get('users_to_remove'))}"
    )


def _update_metadata(payload: Mapping[str, Any]) -> str:
    changes = []
    if payload.get("description") is not None:
        changes.append(f"description '{escaped(payload['description'])}'")
    if payload.get("channels") is not None:
        changes.append(f"channels {names(payload['channels'])}")
    return f"usergroup @{escaped(payload.get('usergroup'))}: set {', '.join(changes) or 'nothing'}"


def _error(payload: Mapping[str, Any]) -> str:
    usergroup = payload.get("usergroup")
    where = f"usergroup @{escaped(usergroup)}" if usergroup else "workspace"
    return f":warning: {where}: {escaped(payload.get('error'))}"


def _generic(event: Event) -> str:
    fields = [
        f"{escaped(key)}={escaped(value)}"
        for key, value in list(event.payload.items())[:MAX_GENERIC_FIELDS]
        if key != "workspace"
    ]
    return f"{escaped(event.event_type)}: {' '.join(fields)}"


LINE_FORMATTERS: Mapping[str, Callable[[Mapping[str, Any]], str]] = {
    "slack-usergroups.create": _create,
    "slack-usergroups.update_users": _update_users,
    "slack-usergroups.update_metadata": _update_metadata,
    "slack-usergroups.error": _error,
}
DIRECT_MESSAGE_TYPES = frozenset(
    {"slack-usergroups.notify_add_user", "slack-usergroups.notify_remove_user"}
)


def messages(event: Event, channels: Mapping[str, str]) -> list[Message]:
    """The messages `event` asks for: a DM per user of a `notify_*` event, else one line in the
    channel configured for its workspace (none for events of other workspaces)."""
    workspace = event.payload.get("workspace")
    if not isinstance(workspace, str):
        return []
    if event.event_type in DIRECT_MESSAGE_TYPES:
        text = event.payload.get("message")
        users = event.payload.get("users")
        if not isinstance(text, str) or not text or not isinstance(users, list):
            return []
        return [
            Message(key=f"user:{user}", workspace=workspace, text=text, user=user)
            for user in dict.fromkeys(users)
            if isinstance(user, str) and user
        ]
    channel = channels.get(workspace)
    if channel is None:
        return []
    formatter = LINE_FORMATTERS.get(event.event_type)
    line = formatter(event.payload) if formatter else _generic(event)
    return [Message(key="channel", workspace=workspace, text=line, channel=channel)]
