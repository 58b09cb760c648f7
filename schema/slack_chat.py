"""`slack_chat_post_v1`: post a message to a Slack channel or to a user's direct messages."""

import re

import strawberry
from strawberry.types import Info

from gateway.errors import BadUserInput, shown
from resolvers.slack.chat import SlackChat
from resolvers.slack.source import SlackSource
from schema.context import RequestContext
from schema.permissions import scope

MAX_NAME = 200
THREAD_TS = re.compile(r"[0-9]{1,20}\.[0-9]{1,10}")


@strawberry.type(name="SlackChatMessage_v1")
class ChatMessage:
    """A message Slack accepted."""

    workspace: str
    channel: str = strawberry.field(description="The conversation id it was posted to")
    ts: str = strawberry.field(description="Slack's id of the message (reply with `thread_ts`)")
    truncated: bool = strawberry.field(description="True when the text was cut to 10,000 chars")


def _checked(what: str, value: str | None) -> str | None:
    if value is not None and not 0 < len(value) <= MAX_NAME:
        raise BadUserInput(f"{what} must be 1-{MAX_NAME} characters")
    return value


async def slack_chat_post(
    info: Info[RequestContext, None],
    workspace: str,
    text: str,
    channel: str | None = None,
    user: str | None = None,
    thread_ts: str | None = None,
) -> ChatMessage:
    """Resolve `slack_chat_post_v1`: exactly one of `channel` (name or id) and `user`."""
    if (channel is None) == (user is None):
        raise BadUserInput("give exactly one of channel and user")
    _checked("channel", channel)
    _checked("user", user)
    if not text.strip():
        raise BadUserInput("text must not be empty")
    if thread_ts is not None and not THREAD_TS.fullmatch(thread_ts):
        raise BadUserInput(f"thread_ts must be a Slack message ts, not {shown(thread_ts)}")
    chat = SlackChat(info.context.sources.get(SlackSource, workspace))
    if channel is not None:
        posted = await chat.to_channel(channel, text, thread_ts)
    else:
        posted = await chat.to_user(user or "", text, thread_ts)
    return ChatMessage(
        workspace=posted.workspace, channel=posted.channel, ts=posted.ts, truncated=posted.truncated
    )


slack_chat_post_v1 = strawberry.mutation(
    resolver=slack_chat_post,
    extensions=scope("notify"),
    description="Post `text` to a Slack channel (name or id; the bot joins a public one if need "
    "be) or to a user's direct messages (org username). Text over 10,000 characters is cut "
    "with a marker. Not idempotent: a caller that retries after a timeout may post twice",
)


@strawberry.type
class SlackChatMutation:
    """Slack's chat field on the root Mutation."""

    slack_chat_post_v1: ChatMessage = slack_chat_post_v1
