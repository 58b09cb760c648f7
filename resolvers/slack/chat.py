"""Posting Slack messages: to a channel by name or id, or to a user's direct messages."""

import re
from dataclasses import dataclass

from gateway.errors import NotFound, UpstreamError, UpstreamRateLimited, shown
from resolvers.slack.source import SlackSource

MAX_TEXT = 10_000
TRUNCATION_MARKER = "\n… (truncated by qontract-gateway)"
RATE_LIMITED_ATTEMPTS = 3
CONVERSATION_ID = re.compile(r"[CGD][A-Z0-9]{1,20}")  # Slack ids; channel names are lowercase
NOT_FOUND_ERRORS = frozenset({"channel_not_found", "user_not_found", "user_disabled"})


@dataclass(frozen=True)
class PostedMessage:
    """A message Slack accepted: the conversation id, its `ts`, and whether it was cut."""

    workspace: str
    channel: str
    ts: str
    truncated: bool


def bounded_text(text: str) -> tuple[str, bool]:
    """`text`, cut to MAX_TEXT characters with a marker when longer; and whether it was cut."""
    if len(text) <= MAX_TEXT:
        return text, False
    return text[: MAX_TEXT - len(TRUNCATION_MARKER)] + TRUNCATION_MARKER, True


class SlackChat:
    """Posts messages in one workspace through its source (cached directories, rate buckets).

    chat.postMessage is not idempotent: it is sent again only after answers that prove it was
    not posted (a 429, `not_in_channel`), never after a timeout or an outage.
    """

    def __init__(self, source: SlackSource) -> None:
        self.source = source

    async def to_channel(
        self, channel: str, text: str, thread_ts: str | None = None
    ) -> PostedMessage:
        """Post to a channel by id or name (a leading # is ignored); joins it if need be."""
        channel_id = await self.channel_id(channel)
        try:
            return await self._post(channel_id, text, thread_ts)
        except UpstreamError as error:
            if error.extensions.get("error") != "not_in_channel":
                raise
        await self.source.api.join_conversation(channel_id)
        return await self._post(channel_id, text, thread_ts)

    async def to_user(
        self, org_username: str, text: str, thread_ts: str | None = None
    ) -> PostedMessage:
        """Post to the direct messages of the active user with `org_username`."""
        members = (await self.source.users()).value["members"]
        member = members.get(org_username)
        if member is None:
            raise NotFound(
                f"Slack workspace {self.source.account!r} has no active user {shown(org_username)}"
            )
        try:
            conversation = await self.source.direct_message(member["id"])
        except UpstreamError as error:
            raise self._not_found_or(error, f"user {shown(org_username)}") from None
        return await self._post(conversation, text, thread_ts)

    async def channel_id(self, channel: str) -> str:
        """The id of `channel` (an id is taken as is; a name is looked up in the cached list)."""
        if CONVERSATION_ID.fullmatch(channel):
            return channel
        name = channel.removeprefix("#")
        channel_id = (await self.source.channels()).value["by_name"].get(name)
        if channel_id is None:
            raise NotFound(
                f"Slack workspace {self.source.account!r} has no channel {shown(channel)} "
                "the gateway's token can see"
            )
        return channel_id

    async def _post(self, channel_id: str, text: str, thread_ts: str | None) -> PostedMessage:
        """chat.postMessage, again after a 429 (the bucket waits out its Retry-After)."""
        body, truncated = bounded_text(text)
        attempt = 1
        while True:
            try:
                ts = await self.source.api.post_message(channel_id, body, thread_ts)
            except UpstreamRateLimited:
                if attempt >= RATE_LIMITED_ATTEMPTS:
                    raise
                attempt += 1
                continue
            except UpstreamError as error:
                raise self._not_found_or(error, f"channel {shown(channel_id)}") from None
            return PostedMessage(self.source.account, channel_id, ts, truncated)

    def _not_found_or(self, error: UpstreamError, what: str) -> UpstreamError | NotFound:
        slack_error = str(error.extensions.get("error", ""))
        if slack_error in NOT_FOUND_ERRORS:
            return NotFound(
                f"Slack workspace {self.source.account!r}: {what} not found ({slack_error})",
                error=slack_error,
            )
        return error
