"""A stateful Slack Web API emulator: users, usergroups, conversations and posted messages."""

import asyncio
import base64
import itertools
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.emulators.base import UpstreamEmulator, json_body

Args = dict[str, str]
Answer = dict[str, Any]


class SlackFailure(Exception):
    """An `{"ok": false, "error": ...}` answer."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class SlackRateLimited(Exception):
    """HTTP 429 with `Retry-After` (seconds) and `{"ok": false, "error": "ratelimited"}`."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("ratelimited")
        self.retry_after = retry_after


MAX_MESSAGE_CHARACTERS = 40_000  # chat.postMessage answers msg_too_long above this


@dataclass
class SlackState:
    """What the emulated workspace holds; tests read and change it directly."""

    token: str = "xoxb-test-token"
    page_size: int = 200
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    usergroups: dict[str, dict[str, Any]] = field(default_factory=dict)
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    direct_messages: dict[str, str] = field(default_factory=dict)
    post_limit: tuple[int, float] | None = None
    post_answer_delay: float = 0.0
    _posts: dict[str, list[float]] = field(default_factory=dict, init=False, repr=False)
    _serial: Iterator[int] = field(
        default_factory=lambda: itertools.count(1), init=False, repr=False
    )

    def add_user(
        self,
        user_id: str,
        name: str,
        email: str | None = None,
        deleted: bool = False,
        enterprise_id: str | None = None,
    ) -> None:
        """A user as `users.list` shows it; `enterprise_id` is its Enterprise Grid `W…` id."""
        user: dict[str, Any] = {
            "id": user_id,
            "team_id": "T0001",
            "name": name,
            "deleted": deleted,
            "real_name": name.title(),
            "profile": {"real_name": name.title(), "display_name": name},
            "is_bot": False,
        }
        if email is not None:
            user["profile"]["email"] = email
        if enterprise_id is not None:
            user["enterprise_user"] = {
                "id": enterprise_id,
                "enterprise_id": "E0001",
                "enterprise_name": "Example Grid",
                "teams": ["T0001"],
            }
        self.users[user_id] = user

    def add_channel(
        self,
        channel_id: str,
        name: str,
        archived: bool = False,
        private: bool = False,
        member: bool = True,
    ) -> None:
        """A conversation as `conversations.list` shows it; `member`: the bot is in it."""
        self.channels[channel_id] = {
            "id": channel_id,
            "name": name,
            "is_channel": True,
            "is_private": private,
            "is_archived": archived,
            "is_member": member,
        }

    def messages_in(self, channel_id: str) -> list[str]:
        """The texts posted to conversation `channel_id`, oldest first."""
        return [m["text"] for m in self.messages if m["channel"] == channel_id]

    def direct_messages_to(self, user_id: str) -> list[str]:
        """The texts posted to the direct-message conversation with `user_id`."""
        conversation = self.direct_messages.get(user_id)
        return self.messages_in(conversation) if conversation else []

    def over_post_limit(self, channel_id: str) -> float | None:
        """Seconds to wait when a post to `channel_id` exceeds `post_limit`, else None (counted)."""
        if self.post_limit is None:
            return None
        requests, window = self.post_limit
        now = time.monotonic()
        recent = [t for t in self._posts.get(channel_id, []) if now - t < window]
        if len(recent) >= requests:
            self._posts[channel_id] = recent
            return window - (now - recent[0])
        self._posts[channel_id] = [*recent, now]
        return None

    def add_usergroup(
        self,
        handle: str,
        users: Iterable[str] = (),
        channels: Iterable[str] = (),
        description: str = "",
        disabled: bool = False,
    ) -> str:
        """A usergroup; returns its new `S…` id."""
        group_id = f"S{next(self._serial):04d}"
        self.usergroups[group_id] = {
            "id": group_id,
            "team_id": "T0001",
            "is_usergroup": True,
            "name": handle.replace("-", " ").title(),
            "description": description,
            "handle": handle,
            "date_create": 1_700_000_000,
            "date_update": 1_700_000_000,
            "date_delete": 1_700_000_100 if disabled else 0,
            "prefs": {"channels": list(channels), "groups": []},
            "users": list(users),
        }
        return group_id

    def usergroup(self, handle: str) -> dict[str, Any]:
        """The usergroup with `handle` (KeyError if none)."""
        return next(g for g in self.usergroups.values() if g["handle"] == handle)

    def user_by_any_id(self, user_id: str) -> dict[str, Any] | None:
        """The user whose workspace or Enterprise Grid id is `user_id`."""
        if user_id in self.users:
            return self.users[user_id]
        for user in self.users.values():
            if user.get("enterprise_user", {}).get("id") == user_id:
                return user
        return None


def _cursor(method: str, offset: int) -> str:
    return base64.b64encode(f"{method}:{offset}".encode()).decode()


def _offset(method: str, cursor: str) -> int:
    if not cursor:
        return 0
    try:
        name, offset = base64.b64decode(cursor).decode().rsplit(":", 1)
        if name == method:
            return int(offset)
    except ValueError:
        pass
    raise SlackFailure("invalid_cursor")


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true")


class SlackEmulator(UpstreamEmulator):
    """Serves `POST /api/<method>` as Slack does: HTTP 200 with `ok` true or false, Bearer auth."""

    def __init__(self, state: SlackState | None = None) -> None:
        self.state = state or SlackState()
        self._methods: dict[str, Callable[[Args], Awaitable[Answer]]] = {
            "users.list": self.users_list,
            "usergroups.list": self.usergroups_list,
            "conversations.list": self.conversations_list,
            "usergroups.create": self.usergroups_create,
            "usergroups.update": self.usergroups_update,
            "usergroups.users.update": self.usergroups_users_update,
            "usergroups.enable": self.usergroups_enable,
            "chat.postMessage": self.chat_post_message,
            "conversations.open": self.conversations_open,
            "conversations.join": self.conversations_join,
        }
        super().__init__([Route("/api/{method}", self.dispatch, methods=["GET", "POST"])])

    async def dispatch(self, request: Request) -> JSONResponse:
        """Check the token, read form or JSON arguments and run the method."""
        authorization = request.headers.get("authorization", "")
        if not authorization.startswith("Bearer "):
            return JSONResponse({"ok": False, "error": "not_authed"})
        if authorization.removeprefix("Bearer ") != self.state.token:
            return JSONResponse({"ok": False, "error": "invalid_auth"})
        method = self._methods.get(request.path_params["method"])
        if method is None:
            return JSONResponse({"ok": False, "error": "unknown_method"})
        args = {key: str(value) for key, value in (await json_body(request)).items()}
        args = {**request.query_params, **args}
        try:
            return JSONResponse({"ok": True, **await method(args)})
        except SlackFailure as failure:
            return JSONResponse({"ok": False, "error": failure.error})
        except SlackRateLimited as limited:
            return JSONResponse(
                {"ok": False, "error": "ratelimited"},
                status_code=429,
                headers={"Retry-After": str(max(1, math.ceil(limited.retry_after)))},
            )

    def _page(
        self, method: str, items: list[dict[str, Any]], args: Args
    ) -> tuple[list[dict[str, Any]], str]:
        limit = min(int(args.get("limit") or 100) or 100, self.state.page_size)
        offset = _offset(method, args.get("cursor", ""))
        end = offset + limit
        return items[offset:end], _cursor(method, end) if end < len(items) else ""

    async def users_list(self, args: Args) -> Answer:
        """users.list: every member, deleted ones included, a page at a time."""
        page, cursor = self._page("users.list", list(self.state.users.values()), args)
        return {"members": page, "response_metadata": {"next_cursor": cursor}}

    async def conversations_list(self, args: Args) -> Answer:
        """conversations.list: pages are cut before `exclude_archived`, so some come out short."""
        types = _split(args.get("types") or "public_channel")
        kinds = [c for c in self.state.channels.values() if _kind(c) in types]
        page, cursor = self._page("conversations.list", kinds, args)
        if _truthy(args.get("exclude_archived")):
            page = [channel for channel in page if not channel["is_archived"]]
        return {"channels": page, "response_metadata": {"next_cursor": cursor}}

    async def usergroups_list(self, args: Args) -> Answer:
        """usergroups.list: not paginated; users only with include_users."""
        groups = [
            self._shown(group, _truthy(args.get("include_users")))
            for group in self.state.usergroups.values()
            if _truthy(args.get("include_disabled")) or group["date_delete"] == 0
        ]
        return {"usergroups": groups}

    async def usergroups_create(self, args: Args) -> Answer:
        """usergroups.create: `name` required; name and handle unique."""
        name = args.get("name", "")
        if not name:
            raise SlackFailure("invalid_name")
        handle = args.get("handle") or name.lower().replace(" ", "-")
        for group in self.state.usergroups.values():
            if group["name"] == name:
                raise SlackFailure("name_already_exists")
            if group["handle"] == handle:
                raise SlackFailure("handle_already_exists")
        channels = self._channels(args.get("channels", ""))
        group_id = self.state.add_usergroup(
            handle, channels=channels, description=args.get("description", "")
        )
        self.state.usergroups[group_id]["name"] = name
        return {"usergroup": self._shown(self.state.usergroups[group_id], False)}

    async def usergroups_update(self, args: Args) -> Answer:
        """usergroups.update: name, handle, description and channels, each when given."""
        group = self._group(args)
        for key in ("name", "handle", "description"):
            if key in args:
                group[key] = args[key]
        if "channels" in args:
            group["prefs"]["channels"] = self._channels(args["channels"])
        group["date_update"] += 1
        return {"usergroup": self._shown(group, False)}

    async def usergroups_users_update(self, args: Args) -> Answer:
        """usergroups.users.update: an empty list, unknown or deleted users are `invalid_users`."""
        group = self._group(args)
        user_ids = _split(args.get("users", ""))
        if not user_ids:
            raise SlackFailure("invalid_users")
        for user_id in user_ids:
            user = self.state.user_by_any_id(user_id)
            if user is None or user["deleted"]:
                raise SlackFailure("invalid_users")
        group["users"] = user_ids
        group["date_update"] += 1
        return {"usergroup": self._shown(group, True)}

    async def usergroups_enable(self, args: Args) -> Answer:
        """usergroups.enable: clears `date_delete`."""
        group = self._group(args)
        group["date_delete"] = 0
        return {"usergroup": self._shown(group, False)}

    async def chat_post_message(self, args: Args) -> Answer:
        """chat.postMessage to a channel the bot is in, a direct message or a user id; recorded.

        A public channel the bot is not in is `not_in_channel`, a private one `channel_not_found`;
        over `post_limit` posts per channel answer HTTP 429 with Retry-After.
        """
        channel = args.get("channel", "")
        self._postable(channel)
        text = args.get("text", "")
        if not text:
            raise SlackFailure("no_text")
        if len(text) > MAX_MESSAGE_CHARACTERS:
            raise SlackFailure("msg_too_long")
        wait = self.state.over_post_limit(channel)
        if wait is not None:
            raise SlackRateLimited(wait)
        ts = f"{1_700_000_000 + len(self.state.messages)}.000100"
        message: dict[str, Any] = {"channel": channel, "text": text, "ts": ts, "at": time.time()}
        if args.get("thread_ts"):
            message["thread_ts"] = args["thread_ts"]
        self.state.messages.append(message)
        if self.state.post_answer_delay:
            await asyncio.sleep(self.state.post_answer_delay)  # posted, but the answer is late
        return {"channel": channel, "ts": ts, "message": {"text": text, "ts": ts}}

    async def conversations_open(self, args: Args) -> Answer:
        """conversations.open with one user: that user's direct-message conversation id."""
        users = _split(args.get("users", ""))
        if not users:
            raise SlackFailure("users_list_not_supplied")
        if len(users) > 1:
            raise SlackFailure("method_not_supported_for_channel_type")
        user = self.state.user_by_any_id(users[0])
        if user is None:
            raise SlackFailure("user_not_found")
        if user["deleted"]:
            raise SlackFailure("user_disabled")
        existing = self.state.direct_messages.get(user["id"])
        if existing is not None:
            return {"no_op": True, "already_open": True, "channel": {"id": existing}}
        conversation = f"D{next(self.state._serial):08d}"
        self.state.direct_messages[user["id"]] = conversation
        return {"channel": {"id": conversation}}

    async def conversations_join(self, args: Args) -> Answer:
        """conversations.join: the bot becomes a member of a public, unarchived channel."""
        channel = self.state.channels.get(args.get("channel", ""))
        if channel is None:
            raise SlackFailure("channel_not_found")
        if channel["is_archived"]:
            raise SlackFailure("is_archived")
        if channel["is_private"]:
            raise SlackFailure("method_not_supported_for_channel_type")
        if channel["is_member"]:
            return {"channel": channel, "warning": "already_in_channel"}
        channel["is_member"] = True
        return {"channel": channel}

    def _postable(self, channel: str) -> None:
        if channel in self.state.direct_messages.values():
            return
        if self.state.user_by_any_id(channel) is not None:
            return
        found = self.state.channels.get(channel)
        if found is None or (found["is_private"] and not found["is_member"]):
            raise SlackFailure("channel_not_found")
        if found["is_archived"]:
            raise SlackFailure("is_archived")
        if not found["is_member"]:
            raise SlackFailure("not_in_channel")

    def _group(self, args: Args) -> dict[str, Any]:
        group = self.state.usergroups.get(args.get("usergroup", ""))
        if group is None:
            raise SlackFailure("no_such_subteam")
        return group

    def _channels(self, value: str) -> list[str]:
        channels = _split(value)
        if any(channel not in self.state.channels for channel in channels):
            raise SlackFailure("channel_not_found")
        return channels

    def _shown(self, group: dict[str, Any], with_users: bool) -> dict[str, Any]:
        shown = {key: value for key, value in group.items() if key != "users"}
        shown["user_count"] = len(group["users"])
        if with_users:
            shown["users"] = list(group["users"])
        return shown


def _kind(channel: dict[str, Any]) -> str:
    return "private_channel" if channel["is_private"] else "public_channel"
