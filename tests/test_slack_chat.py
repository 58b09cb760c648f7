"""`slack_chat_post_v1` end to end: GraphQL mutation, Slack source and the Slack emulator."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gateway.auth import mint_token
from resolvers.slack.chat import MAX_TEXT, TRUNCATION_MARKER
from tests.emulators.slack import SlackEmulator
from tests.support.gateway import graphql
from tests.support.server_thread import ServerThread
from tests.support.slack_workspace import coreos_slack

SECRET = "chat-test-secret-0123456789abcdef"
POST = """mutation Post($channel: String, $user: String, $text: String!, $thread: String) {
  slack_chat_post_v1(workspace: "coreos", channel: $channel, user: $user, text: $text,
                     thread_ts: $thread) { workspace channel ts truncated }
}"""


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SlackEmulator, dict[str, Any]]]:
    with coreos_slack(monkeypatch) as (emulator, workspace):
        emulator.state.add_channel("C3", "outside", member=False)
        emulator.state.add_channel("C4", "secret", private=True, member=False)
        emulator.state.add_channel("C5", "attic", archived=True)
        yield emulator, workspace


@pytest.fixture
def gateway(
    gateway_factory: Callable[..., ServerThread], slack: tuple[SlackEmulator, dict[str, Any]]
) -> ServerThread:
    workspace = {**slack[1], "timeout": 1.0}
    return gateway_factory(auth={"secret": SECRET}, upstreams={"slack": [workspace]})


def post(gateway: ServerThread, scopes: str = "notify", **variables: Any) -> Any:
    token = mint_token(SECRET, "chat-test", scopes.split(","), expires_days=1)
    return graphql(gateway, POST, token, **{"text": "hello", **variables})


def posted(body: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in body, body["errors"]
    message: dict[str, Any] = body["data"]["slack_chat_post_v1"]
    return message


def error_code(body: dict[str, Any]) -> str:
    code: str = body["errors"][0]["extensions"]["code"]
    return code


def test_a_channel_by_name_or_id_gets_the_message(
    gateway: ServerThread, slack: tuple[SlackEmulator, dict[str, Any]]
) -> None:
    emulator, _ = slack
    by_name = posted(post(gateway, channel="#sre", text="by name"))
    by_id = posted(post(gateway, channel="C2", text="by id", thread=by_name["ts"]))
    assert (by_name["channel"], by_id["channel"]) == ("C1", "C2")
    assert emulator.state.messages_in("C1") == ["by name"]
    assert emulator.state.messages_in("C2") == ["by id"]
    assert emulator.state.messages[-1]["thread_ts"] == by_name["ts"]


def test_a_public_channel_the_bot_is_not_in_is_joined_then_posted_to_once(
    gateway: ServerThread, slack: tuple[SlackEmulator, dict[str, Any]]
) -> None:
    emulator, _ = slack
    posted(post(gateway, channel="outside", text="joined"))
    assert emulator.state.messages_in("C3") == ["joined"]
    assert emulator.total_calls("POST /api/conversations.join") == 1
    assert emulator.total_calls("POST /api/chat.postMessage") == 2  # not_in_channel, then ok


def test_a_user_gets_a_direct_message_through_one_opened_conversation(
    gateway: ServerThread, slack: tuple[SlackEmulator, dict[str, Any]]
) -> None:
    emulator, _ = slack
    first = posted(post(gateway, user="carol", text="one"))
    posted(post(gateway, user="carol", text="two"))
    assert first["channel"].startswith("D")
    assert emulator.state.direct_messages_to("U4") == ["one", "two"]
    assert emulator.total_calls("POST /api/conversations.open") == 1


@pytest.mark.parametrize(
    "target",
    [{"channel": "nope"}, {"channel": "C404"}, {"channel": "secret"}, {"user": "gone"}],
)
def test_unknown_channels_and_users_are_not_found(
    gateway: ServerThread, slack: tuple[SlackEmulator, dict[str, Any]], target: dict[str, str]
) -> None:
    emulator, _ = slack
    assert error_code(post(gateway, **target)) == "NOT_FOUND"
    assert emulator.state.messages == []


def test_a_slack_refusal_is_an_upstream_error_with_slacks_error_string(
    gateway: ServerThread,
) -> None:
    body = post(gateway, channel="C5")
    assert error_code(body) == "UPSTREAM_ERROR"
    assert body["errors"][0]["extensions"]["error"] == "is_archived"


def test_text_over_the_limit_is_cut_with_a_marker(
    gateway: ServerThread, slack: tuple[SlackEmulator, dict[str, Any]]
) -> None:
    emulator, _ = slack
    message = posted(post(gateway, channel="sre", text="x" * 50_000))
    assert message["truncated"] is True
    text = emulator.state.messages_in("C1")[0]
    assert len(text) == MAX_TEXT
    assert text.endswith(TRUNCATION_MARKER)


def test_slacks_per_channel_429_is_waited_out_and_every_message_posted_once(
    gateway: ServerThread, slack: tuple[SlackEmulator, dict[str, Any]]
) -> None:
    emulator, _ = slack
    emulator.state.post_limit = (1, 1.0)
    posted(post(gateway, channel="sre", text="first"))
    posted(post(gateway, channel="sre", text="second"))
    assert emulator.state.messages_in("C1") == ["first", "second"]
    assert emulator.total_calls("POST /api/chat.postMessage") == 3  # one 429 in between


def test_a_timeout_is_not_retried_because_the_message_may_have_been_posted(
    gateway: ServerThread, slack: tuple[SlackEmulator, dict[str, Any]]
) -> None:
    emulator, _ = slack
    emulator.slow(2.0, path_prefix="/api/chat.postMessage")
    assert error_code(post(gateway, channel="sre")) == "TIMEOUT"
    assert emulator.total_calls("POST /api/chat.postMessage") == 1


def test_the_notify_scope_is_needed(gateway: ServerThread) -> None:
    assert error_code(post(gateway, scopes="read,events", channel="sre")) == "FORBIDDEN"


@pytest.mark.parametrize(
    "variables",
    [
        {},
        {"channel": "sre", "user": "alice"},
        {"channel": "sre", "text": " "},
        {"channel": "sre", "thread": "not-a-ts"},
        {"channel": "x" * 201},
    ],
)
def test_bad_arguments_are_bad_user_input(
    gateway: ServerThread, slack: tuple[SlackEmulator, dict[str, Any]], variables: dict[str, str]
) -> None:
    emulator, _ = slack
    assert error_code(post(gateway, **variables)) == "BAD_USER_INPUT"
    assert emulator.total_calls("POST /api/chat.postMessage") == 0
