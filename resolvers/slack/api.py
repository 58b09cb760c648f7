"""Typed async client of the Slack Web API (no caching; the source adds that).

Built on our httpx `UpstreamClient`, not on slack-sdk: its AsyncWebClient needs aiohttp (not a
dependency) and would bypass the shared rate buckets, retries, breaker and metrics, and its
models cover messages and blocks, not users or usergroups. Nothing of it is used here.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import httpx
from pydantic import BaseModel, Field

from gateway.errors import UpstreamError
from gateway.ratelimit import Bucket, BucketSpec
from gateway.upstream import UpstreamClient, UpstreamPath

SLACK_TIER_2 = BucketSpec.within(20, 60)
SLACK_TIER_3 = BucketSpec.within(50, 60)
SLACK_POST_MESSAGE = BucketSpec.within(60, 60)  # "special": about 1 message/s per channel
PAGE_SIZE = 999  # Slack's largest page; fewer, larger pages spend less of the tier-2 budget


@dataclass(frozen=True)
class MethodLimit:
    """Slack's published rate tier of one Web API method (per method, per workspace)."""

    tier: str
    spec: BucketSpec


METHOD_LIMITS: Mapping[str, MethodLimit] = MappingProxyType(
    {
        "users.list": MethodLimit("tier2", SLACK_TIER_2),
        "usergroups.list": MethodLimit("tier2", SLACK_TIER_2),
        "conversations.list": MethodLimit("tier2", SLACK_TIER_2),
        "usergroups.create": MethodLimit("tier2", SLACK_TIER_2),
        "usergroups.update": MethodLimit("tier2", SLACK_TIER_2),
        "usergroups.users.update": MethodLimit("tier2", SLACK_TIER_2),
        "usergroups.enable": MethodLimit("tier2", SLACK_TIER_2),
        "chat.postMessage": MethodLimit("special", SLACK_POST_MESSAGE),
        "conversations.open": MethodLimit("tier3", SLACK_TIER_3),
        "conversations.join": MethodLimit("tier3", SLACK_TIER_3),
    }
)


class SlackProfile(BaseModel):
    """The part of a user's profile the gateway needs."""

    email: str | None = None


class EnterpriseUser(BaseModel):
    """Enterprise Grid identity of a user: its `W…` id."""

    id: str


class SlackUser(BaseModel):
    """A member of `users.list`."""

    id: str
    name: str
    deleted: bool = False
    profile: SlackProfile = Field(default_factory=SlackProfile)
    enterprise_user: EnterpriseUser | None = None

    @property
    def ids(self) -> list[str]:
        """Every id Slack may use for this user: the workspace id and the Enterprise Grid id."""
        grid = self.enterprise_user.id if self.enterprise_user else self.id
        return [self.id] if grid == self.id else [self.id, grid]

    @property
    def org_username(self) -> str:
        """The local part of the e-mail, else the Slack `name`."""
        email = self.profile.email or ""
        return email.split("@", 1)[0] if "@" in email else self.name


class UsergroupPrefs(BaseModel):
    """A usergroup's default channels (ids)."""

    channels: list[str] = Field(default_factory=list)


class SlackUsergroup(BaseModel):
    """A usergroup; `users` is None when Slack's answer did not include the member ids."""

    id: str
    handle: str
    name: str
    description: str = ""
    prefs: UsergroupPrefs = Field(default_factory=UsergroupPrefs)
    users: list[str] | None = None
    date_delete: int = 0

    @property
    def disabled(self) -> bool:
        """True when the usergroup is disabled (Slack sets `date_delete`)."""
        return self.date_delete != 0


class SlackChannel(BaseModel):
    """A conversation of `conversations.list`."""

    id: str
    name: str
    is_archived: bool = False


class SlackApi:
    """Users, usergroups, channels and messages of one Slack workspace.

    Every method draws on its own bucket (Slack limits each method per workspace), named
    `<tier>:<method>`; `rate_limit` replaces the published spec of every method.
    """

    def __init__(
        self,
        client: UpstreamClient,
        rate_limit: BucketSpec | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.client = client
        self.rate_limit = rate_limit
        self.page_size = page_size

    @property
    def workspace(self) -> str:
        """The workspace name (never a secret)."""
        return self.client.account.name

    def bucket(self, method: str, scope: str = "") -> Bucket:
        """The shared bucket of `method` in this workspace (`scope` narrows it, e.g. a channel)."""
        limit = METHOD_LIMITS[method]
        tier = f"{limit.tier}:{method}" + (f":{scope}" if scope else "")
        return Bucket("slack", self.workspace, tier, self.rate_limit or limit.spec)

    async def users(self) -> list[SlackUser]:
        """Every user of the workspace, deleted ones included (`deleted` tells)."""
        members = await self._pages("users.list", {}, "members")
        return [SlackUser.model_validate(member) for member in members]

    async def usergroups(self) -> list[SlackUsergroup]:
        """Every usergroup with its member ids, disabled ones included (not paginated by Slack)."""
        body = await self._call(
            "usergroups.list",
            {"include_users": "true", "include_disabled": "true"},
            idempotent=True,
        )
        return [SlackUsergroup.model_validate(group) for group in body.get("usergroups", [])]

    async def channels(self, types: str = "public_channel,private_channel") -> list[SlackChannel]:
        """Every unarchived conversation of `types` the token can see."""
        args = {"types": types, "exclude_archived": "true"}
        found = await self._pages("conversations.list", args, "channels")
        return [SlackChannel.model_validate(channel) for channel in found]

    async def create_usergroup(
        self, handle: str, name: str, description: str = "", channels: Sequence[str] = ()
    ) -> SlackUsergroup:
        """Create a usergroup; `channels` are channel ids."""
        args = {"handle": handle, "name": name, "description": description}
        if channels:
            args["channels"] = ",".join(channels)
        body = await self._call("usergroups.create", args, idempotent=False)
        return SlackUsergroup.model_validate(body["usergroup"])

    async def update_usergroup(
        self,
        usergroup_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        channels: Sequence[str] | None = None,
    ) -> SlackUsergroup:
        """Change what is given of a usergroup's name, description and default channel ids."""
        args = {"usergroup": usergroup_id}
        if name is not None:
            args["name"] = name
        if description is not None:
            args["description"] = description
        if channels is not None:
            args["channels"] = ",".join(channels)
        body = await self._call("usergroups.update", args, idempotent=True)
        return SlackUsergroup.model_validate(body["usergroup"])

    async def update_usergroup_users(
        self, usergroup_id: str, user_ids: Sequence[str]
    ) -> SlackUsergroup:
        """Replace a usergroup's members; Slack answers `invalid_users` to an empty list."""
        args = {"usergroup": usergroup_id, "users": ",".join(user_ids)}
        body = await self._call("usergroups.users.update", args, idempotent=True)
        return SlackUsergroup.model_validate(body["usergroup"])

    async def enable_usergroup(self, usergroup_id: str) -> SlackUsergroup:
        """Re-enable a disabled usergroup."""
        body = await self._call("usergroups.enable", {"usergroup": usergroup_id}, idempotent=True)
        return SlackUsergroup.model_validate(body["usergroup"])

    async def post_message(self, channel: str, text: str, thread_ts: str | None = None) -> str:
        """Post `text` to a conversation id (a reply when `thread_ts`); returns the message `ts`.

        Never retried on an ambiguous failure (a timeout may come after Slack posted it).
        """
        args = {"channel": channel, "text": text}
        if thread_ts:
            args["thread_ts"] = thread_ts
        body = await self._call("chat.postMessage", args, idempotent=False, scope=channel)
        return str(body.get("ts", ""))

    async def open_conversation(self, user_id: str) -> str:
        """The id of the direct-message conversation with `user_id` (opened or resumed)."""
        body = await self._call("conversations.open", {"users": user_id}, idempotent=True)
        return str(body["channel"]["id"])

    async def join_conversation(self, channel_id: str) -> None:
        """Make the token's bot a member of public channel `channel_id`."""
        await self._call("conversations.join", {"channel": channel_id}, idempotent=True)

    async def _pages(self, method: str, args: Mapping[str, str], key: str) -> list[dict[str, Any]]:
        """All items under `key` across cursor pages; a page may be short or empty mid-way."""
        items: list[dict[str, Any]] = []
        cursors: set[str] = set()
        cursor = ""
        while True:
            page_args = {**args, "limit": str(self.page_size)}
            if cursor:
                page_args["cursor"] = cursor
            body = await self._call(method, page_args, idempotent=True)
            items.extend(body.get(key, []))
            cursor = (body.get("response_metadata") or {}).get("next_cursor") or ""
            if not cursor:
                return items
            if cursor in cursors:
                raise UpstreamError(
                    f"Slack workspace {self.workspace!r}: {method} repeated a cursor",
                    error="repeated_cursor",
                )
            cursors.add(cursor)

    async def _call(
        self, method: str, args: Mapping[str, str], *, idempotent: bool, scope: str = ""
    ) -> dict[str, Any]:
        """POST one method as a form; `ok: false` becomes UPSTREAM_ERROR with Slack's error name."""
        response = await self.client.request(
            method,
            "POST",
            UpstreamPath("/{}", method),
            data=args,
            idempotent=idempotent,
            bucket=self.bucket(method, scope),
        )
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            raise UpstreamError(
                f"Slack workspace {self.workspace!r}: {method} answered a non-JSON body"
            ) from None
        if not body.get("ok"):
            error = str(body.get("error") or "unknown_error")
            raise UpstreamError(
                f"Slack workspace {self.workspace!r}: {method} failed: {error}", error=error
            )
        return body


TRANSIENT_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
"""Slack errors (HTTP 200, `ok: false`) that another attempt may not get."""


def slack_outage(response: httpx.Response) -> str | None:
    """Slack's transient failures hidden in HTTP 200 answers, for the upstream policy."""
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and not body.get("ok") and body.get("error") in TRANSIENT_ERRORS:
        return str(body["error"])
    return None
