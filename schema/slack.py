"""Slack types and root fields: `slack_usergroups_v1`, `slack_users_v1`, `slack_channels_v1`."""

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import strawberry
from strawberry.types import Info

from gateway.cache import Cached
from gateway.errors import NotFound
from resolvers.slack.source import (
    ChannelDirectory,
    SlackSource,
    UserDirectory,
    UsergroupRecord,
    UserRecord,
)
from schema.cached_subtrees import cached_item, made
from schema.context import RequestContext
from schema.inputs import bounded
from schema.provenance import record

T = TypeVar("T")


@strawberry.federation.type(name="SlackUsergroup_v1", keys=["workspace handle"])
class SlackUsergroup:
    """A usergroup: default channels by name, members by org username (deleted users left out)."""

    workspace: str = strawberry.field(description="The Slack workspace (account) name")
    id: str
    handle: str
    name: str
    description: str
    channels: list[str]
    users: list[str]
    disabled: bool

    @classmethod
    async def resolve_reference(
        cls, info: Info[RequestContext, None], workspace: str, handle: str
    ) -> "SlackUsergroup":
        """The entity `workspace handle`, from the request's one usergroups lookup."""
        return _found(await slack_usergroups(info, workspace, [handle]), "usergroup", handle)


@strawberry.federation.type(name="SlackUser_v1", keys=["workspace org_username"])
class SlackUser:
    """An active user; `org_username` is the e-mail's local part, else the Slack name."""

    workspace: str = strawberry.field(description="The Slack workspace (account) name")
    id: str
    enterprise_user_id: str | None
    org_username: str
    name: str
    email: str | None

    @classmethod
    async def resolve_reference(
        cls, info: Info[RequestContext, None], workspace: str, org_username: str
    ) -> "SlackUser":
        """The entity `workspace org_username`, from the request's one users lookup."""
        return _found(await slack_users(info, workspace, [org_username]), "user", org_username)


def _found(items: list[T], what: str, name: str) -> T:
    """The one item a lookup by `name` found, else NOT_FOUND."""
    if not items:
        raise NotFound(f"Slack {what} {name!r} not found")
    return made(items[0])


@strawberry.type(name="SlackChannel_v1")
class SlackChannel:
    """An unarchived channel."""

    id: str
    name: str


async def _lookup(
    info: Info[RequestContext, None],
    workspace: str,
    data_type: str,
    fetch: Callable[[SlackSource], Awaitable[Cached[T]]],
) -> Cached[T]:
    """`data_type` of `workspace`, looked up (and its provenance recorded) once per request."""
    context = info.context
    source = context.sources.get(SlackSource, workspace)

    async def load() -> Cached[T]:
        cached = await fetch(source)
        record(info, cached.lookup)
        return cached

    task: asyncio.Future[Cached[T]] = context.per_request(
        f"slack/{workspace}/{data_type}", lambda: asyncio.ensure_future(load())
    )
    return await task


def _wanted(names: list[str] | None, available: dict[str, Any]) -> list[str]:
    """The asked names that exist, in the order asked (duplicates once), else all sorted."""
    if names is None:
        return sorted(available)
    return [name for name in dict.fromkeys(names) if name in available]


async def slack_usergroups(
    info: Info[RequestContext, None], workspace: str, handles: list[str] | None = None
) -> list[SlackUsergroup]:
    """Resolve `slack_usergroups_v1`: handles that do not exist are left out."""
    groups, users, channels = await asyncio.gather(
        _lookup(info, workspace, "usergroups", SlackSource.usergroups),
        _lookup(info, workspace, "users", SlackSource.users),
        _lookup(info, workspace, "channels", SlackSource.channels),
    )
    return [
        _usergroup(workspace, groups.value[handle], users.value, channels.value)
        for handle in _wanted(handles, groups.value)
    ]


def _usergroup(
    workspace: str, group: UsergroupRecord, users: UserDirectory, channels: ChannelDirectory
) -> SlackUsergroup:
    members = (users["ids"].get(user_id) for user_id in group["users"])
    return SlackUsergroup(
        workspace=workspace,
        id=group["id"],
        handle=group["handle"],
        name=group["name"],
        description=group["description"],
        channels=[channels["by_id"][c] for c in group["channels"] if c in channels["by_id"]],
        users=sorted({member for member in members if member is not None}),
        disabled=group["disabled"],
    )


async def slack_users(
    info: Info[RequestContext, None], workspace: str, org_usernames: list[str] | None = None
) -> list[SlackUser]:
    """Resolve `slack_users_v1`: org usernames without an active user are left out."""
    directory = await _lookup(info, workspace, "users", SlackSource.users)
    members = directory.value["members"]
    return [
        cached_item(directory, name, functools.partial(_user, workspace, members[name]))
        for name in _wanted(org_usernames, members)
    ]


def _user(workspace: str, user: UserRecord) -> SlackUser:
    return SlackUser(
        workspace=workspace,
        id=user["id"],
        enterprise_user_id=next((i for i in user["ids"] if i != user["id"]), None),
        org_username=user["org_username"],
        name=user["name"],
        email=user["email"],
    )


async def slack_channels(
    info: Info[RequestContext, None], workspace: str, names: list[str] | None = None
) -> list[SlackChannel]:
    """Resolve `slack_channels_v1`: a leading `#` is ignored; unknown names are left out."""
    directory = await _lookup(info, workspace, "channels", SlackSource.channels)
    by_name = directory.value["by_name"]
    asked = None if names is None else [name.removeprefix("#") for name in names]
    return [SlackChannel(id=by_name[name], name=name) for name in _wanted(asked, by_name)]


@strawberry.type
class SlackQuery:
    """Slack root fields (joined into Query by the system registry)."""

    slack_usergroups_v1: list[SlackUsergroup] = strawberry.field(
        resolver=slack_usergroups,
        extensions=bounded("read"),
        description="Usergroups of Slack `workspace` (all, or by handle), cached",
    )

    slack_users_v1: list[SlackUser] = strawberry.field(
        resolver=slack_users,
        extensions=bounded("read"),
        description="Active users of Slack `workspace` (all, or by org username), cached",
    )

    slack_channels_v1: list[SlackChannel] = strawberry.field(
        resolver=slack_channels,
        extensions=bounded("read"),
        description="Unarchived channels of Slack `workspace` (all, or by name), cached",
    )
