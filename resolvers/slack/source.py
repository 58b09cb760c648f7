"""Cached, rate-limited Slack data of one workspace: users, usergroups and channels."""

from collections.abc import Sequence

from pydantic import TypeAdapter
from typing_extensions import TypedDict

from gateway.cache import Cached, CacheKey, CacheLookup
from gateway.source import AccountSource
from resolvers.slack.api import SlackApi, SlackChannel, SlackUser, SlackUsergroup

SYSTEM = "slack"
DEFAULT_TTL = {
    "usergroups": 3_600.0,
    "users": 43_200.0,
    "channels": 43_200.0,
    "direct_messages": 43_200.0,
}
ALL = "all"


class UserRecord(TypedDict):
    """What is cached and served of an active user."""

    id: str
    ids: list[str]
    org_username: str
    name: str
    email: str | None


class UserDirectory(TypedDict):
    """Active users by org username, every id (`U…` and `W…`) to its org username, deleted ids."""

    members: dict[str, UserRecord]
    ids: dict[str, str]
    deleted_ids: list[str]


class UsergroupRecord(TypedDict):
    """What is cached of a usergroup; `channels` and `users` are Slack ids."""

    id: str
    handle: str
    name: str
    description: str
    channels: list[str]
    users: list[str]
    disabled: bool


class ChannelDirectory(TypedDict):
    """Unarchived channels, name to id and id to name."""

    by_name: dict[str, str]
    by_id: dict[str, str]


Usergroups = dict[str, UsergroupRecord]
USERS = TypeAdapter(UserDirectory)
USERGROUPS = TypeAdapter(Usergroups)
CHANNELS = TypeAdapter(ChannelDirectory)
CONVERSATION = TypeAdapter(str)


def user_directory(users: Sequence[SlackUser]) -> UserDirectory:
    """Active users keyed by org username (the first one wins a clash); deleted ones set apart."""
    members: dict[str, UserRecord] = {}
    ids: dict[str, str] = {}
    deleted_ids: list[str] = []
    for user in users:
        if user.deleted:
            deleted_ids.append(user.id)
            continue
        if user.org_username in members:
            continue
        members[user.org_username] = UserRecord(
            id=user.id,
            ids=user.ids,
            org_username=user.org_username,
            name=user.name,
            email=user.profile.email,
        )
        for user_id in user.ids:
            ids[user_id] = user.org_username
    return UserDirectory(members=members, ids=ids, deleted_ids=deleted_ids)


def usergroup_record(usergroup: SlackUsergroup, users: list[str]) -> UsergroupRecord:
    """What is cached of `usergroup`, with `users` standing in when Slack's answer had none."""
    return UsergroupRecord(
        id=usergroup.id,
        handle=usergroup.handle,
        name=usergroup.name,
        description=usergroup.description,
        channels=list(usergroup.prefs.channels),
        users=users if usergroup.users is None else list(usergroup.users),
        disabled=usergroup.disabled,
    )


def channel_directory(channels: Sequence[SlackChannel]) -> ChannelDirectory:
    """Channel names to ids and back."""
    return ChannelDirectory(
        by_name={channel.name: channel.id for channel in channels},
        by_id={channel.id: channel.name for channel in channels},
    )


class SlackSource(AccountSource[SlackApi]):
    """One Slack workspace's data through the shared cache and its per-method rate buckets.

    Slack answers lists, not lookups: each data type is cached whole, under one key.
    """

    system = SYSTEM
    default_ttl = DEFAULT_TTL

    def _key(self, data_type: str) -> CacheKey:
        return self.key(data_type, ALL)

    async def users(self) -> Cached[UserDirectory]:
        """The workspace's users (one `users.list` walk per TTL across all replicas)."""
        return await self.cache.get_or_fetch(
            self._key("users"), self._fetch_users, self.ttl["users"], record=USERS
        )

    async def usergroups(self) -> Cached[Usergroups]:
        """Every usergroup by handle, disabled ones included (`disabled` tells)."""

        async def fetch() -> Usergroups:
            groups = await self.api.usergroups()
            return {group.handle: usergroup_record(group, []) for group in groups}

        key = self._key("usergroups")
        return await self.cache.get_or_fetch(key, fetch, self.ttl["usergroups"], record=USERGROUPS)

    async def channels(self) -> Cached[ChannelDirectory]:
        """Unarchived channels by name and by id."""

        async def fetch() -> ChannelDirectory:
            return channel_directory(await self.api.channels())

        key = self._key("channels")
        return await self.cache.get_or_fetch(key, fetch, self.ttl["channels"], record=CHANNELS)

    async def direct_message(self, user_id: str) -> str:
        """The id of the direct-message conversation with `user_id` (a `U…`/`W…` id), cached."""

        async def fetch() -> str:
            return await self.api.open_conversation(user_id)

        cached = await self.cache.get_or_fetch(
            self.key("direct_messages", user_id),
            fetch,
            self.ttl["direct_messages"],
            record=CONVERSATION,
        )
        return cached.value

    async def refresh_users(self) -> Cached[UserDirectory]:
        """Fetch the users now and replace the cached copy (after Slack said `invalid_users`)."""
        key = self._key("users")
        directory = await self._fetch_users()
        await self.cache.put(key, directory, self.ttl["users"], record=USERS)
        return Cached(directory, CacheLookup(SYSTEM, self.cache.key_name(key), "miss", 0.0))

    async def put_usergroup(self, usergroup: SlackUsergroup) -> None:
        """Write a usergroup Slack returned after a change into the cached list, if one is fresh.

        Members the answer lacks (`usergroups.update` omits them) are kept from the cached copy.
        The list keeps its original expiry, so changes made outside the gateway still show up
        within one TTL however often the gateway writes. Without a fresh list, any stale copy is
        dropped, so the next read goes to Slack rather than serve the state before the change.
        """
        key = self._key("usergroups")
        found, _ = await self.cache.get_many([key], USERGROUPS)
        cached = found.get(key)
        remaining = self.ttl["usergroups"] - cached.lookup.age_seconds if cached else 0.0
        if cached is None or remaining <= 0:
            await self.cache.invalidate(key)
            return
        groups: Usergroups = {
            handle: group for handle, group in cached.value.items() if group["id"] != usergroup.id
        }
        previous = next((g for g in cached.value.values() if g["id"] == usergroup.id), None)
        groups[usergroup.handle] = usergroup_record(
            usergroup, list(previous["users"]) if previous else []
        )
        await self.cache.put(key, groups, remaining, record=USERGROUPS)

    async def _fetch_users(self) -> UserDirectory:
        return user_directory(await self.api.users())
