"""Slack usergroups, users and channels through the gateway: cached, paged, per-method limits."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.emulators.slack import SlackEmulator
from tests.support.gateway import graphql
from tests.support.server_thread import ServerThread

TOKEN = "xoxb-secret-slack-token-456"
USERGROUPS = """query Usergroups($workspace: String!, $handles: [String!]) {
  slack_usergroups_v1(workspace: $workspace, handles: $handles) {
    id handle name description channels users disabled
  }
}"""
USERS = """query Users($workspace: String!, $names: [String!]) {
  slack_users_v1(workspace: $workspace, org_usernames: $names) {
    id enterprise_user_id org_username name email
  }
}"""
GENEROUS = {"requests": 6000, "per_seconds": 60, "burst": 100}
CHANNELS = """query Channels($workspace: String!, $names: [String!]) {
  slack_channels_v1(workspace: $workspace, names: $names) { id name }
}"""


@pytest.fixture
def slack() -> Iterator[tuple[SlackEmulator, ServerThread]]:
    emulator = SlackEmulator()
    state = emulator.state
    state.token = TOKEN
    state.page_size = 2
    state.add_user("U1", "alice", "alice@example.com")
    state.add_user("U2", "bob.smith", "bob@example.com")
    state.add_user("U3", "gone", "gone@example.com", deleted=True)
    state.add_user("U4", "carol", enterprise_id="W4")
    state.add_user("W5", "dave", "dave@example.com", enterprise_id="W5")
    state.add_channel("C1", "sre")
    state.add_channel("C2", "old-news", archived=True)
    state.add_channel("C3", "team-x")
    state.add_channel("C4", "secret", private=True)
    state.add_channel("C5", "attic", archived=True)
    state.add_channel("C6", "attic-2", archived=True)
    state.add_channel("C7", "last")
    state.add_usergroup("sre-team", users=["U1", "W4", "U3"], channels=["C1", "C3"])
    state.add_usergroup("grid-team", users=["U4", "W4", "W5"], description="Grid ids")
    state.add_usergroup("old-team", users=["U2"], disabled=True)
    with ServerThread(emulator.app) as server:
        yield emulator, server


@pytest.fixture
def slack_gateway(
    gateway_factory: Callable[..., ServerThread],
    slack: tuple[SlackEmulator, ServerThread],
    monkeypatch: pytest.MonkeyPatch,
) -> ServerThread:
    monkeypatch.setenv("QGW_TEST_SLACK_TOKEN", TOKEN)
    _, upstream = slack
    workspaces = [
        {
            "name": name,
            "api_url": f"{upstream.url}/api",
            "token": {"env": "QGW_TEST_SLACK_TOKEN"},
            "rate_limit": GENEROUS,
        }
        for name in ("coreos", "other")
    ]
    return gateway_factory(upstreams={"slack": workspaces})


def query(
    server: ServerThread, document: str, workspace: str = "coreos", **variables: Any
) -> dict[str, Any]:
    return graphql(server, document, workspace=workspace, **variables)


def test_usergroups_show_channel_names_and_active_members_by_org_username(
    slack_gateway: ServerThread,
) -> None:
    body = query(slack_gateway, USERGROUPS, handles=["sre-team", "old-team", "no-such-team"])
    sre, old = body["data"]["slack_usergroups_v1"]
    assert sre == {
        "id": sre["id"],
        "handle": "sre-team",
        "name": "Sre Team",
        "description": "",
        "channels": ["sre", "team-x"],
        "users": ["alice", "carol"],
        "disabled": False,
    }
    assert (old["handle"], old["disabled"], old["users"]) == ("old-team", True, ["bob"])
    outcomes = sorted(
        (p["key"].split("/")[-1].split("}")[0], p["outcome"])
        for p in body["extensions"]["provenance"]
    )
    assert outcomes == [("channels", "miss"), ("usergroups", "miss"), ("users", "miss")]


def test_enterprise_grid_ids_map_to_the_same_user(slack_gateway: ServerThread) -> None:
    body = query(slack_gateway, USERGROUPS, handles=["grid-team"])
    assert body["data"]["slack_usergroups_v1"][0]["users"] == ["carol", "dave"]


def test_users_are_the_active_users_across_pages_by_org_username(
    slack_gateway: ServerThread, slack: tuple[SlackEmulator, ServerThread]
) -> None:
    emulator, _ = slack
    body = query(slack_gateway, USERS)
    assert body["data"]["slack_users_v1"] == [
        {
            "id": "U1",
            "enterprise_user_id": None,
            "org_username": "alice",
            "name": "alice",
            "email": "alice@example.com",
        },
        {
            "id": "U2",
            "enterprise_user_id": None,
            "org_username": "bob",
            "name": "bob.smith",
            "email": "bob@example.com",
        },
        {
            "id": "U4",
            "enterprise_user_id": "W4",
            "org_username": "carol",
            "name": "carol",
            "email": None,
        },
        {
            "id": "W5",
            "enterprise_user_id": None,
            "org_username": "dave",
            "name": "dave",
            "email": "dave@example.com",
        },
    ]
    assert emulator.total_calls("POST /api/users.list") == 3, "5 users, 2 a page"


def test_users_by_org_username_leave_out_deleted_and_unknown_ones(
    slack_gateway: ServerThread,
) -> None:
    body = query(slack_gateway, USERS, names=["gone", "carol", "nobody", "carol"])
    assert [u["org_username"] for u in body["data"]["slack_users_v1"]] == ["carol"]


def test_channels_across_short_and_empty_pages_leave_out_archived_ones(
    slack_gateway: ServerThread, slack: tuple[SlackEmulator, ServerThread]
) -> None:
    emulator, _ = slack
    body = query(slack_gateway, CHANNELS)
    channels = body["data"]["slack_channels_v1"]
    assert channels == [
        {"id": "C7", "name": "last"},
        {"id": "C4", "name": "secret"},
        {"id": "C1", "name": "sre"},
        {"id": "C3", "name": "team-x"},
    ]
    assert emulator.total_calls("POST /api/conversations.list") == 4
    body = query(slack_gateway, CHANNELS, names=["#sre", "old-news"])
    assert body["data"]["slack_channels_v1"] == [{"id": "C1", "name": "sre"}]


def test_second_usergroups_query_is_a_cache_hit_without_upstream_call(
    slack_gateway: ServerThread, slack: tuple[SlackEmulator, ServerThread]
) -> None:
    emulator, _ = slack
    query(slack_gateway, USERGROUPS)
    body = query(slack_gateway, USERGROUPS)
    assert [g["handle"] for g in body["data"]["slack_usergroups_v1"]] == [
        "grid-team",
        "old-team",
        "sre-team",
    ]
    assert {p["outcome"] for p in body["extensions"]["provenance"]} == {"hit"}
    assert emulator.total_calls("POST /api/usergroups.list") == 1
    assert emulator.total_calls("POST /api/users.list") == 3


def test_no_usergroups_is_cached_as_a_result(
    slack_gateway: ServerThread, slack: tuple[SlackEmulator, ServerThread]
) -> None:
    emulator, _ = slack
    emulator.state.usergroups.clear()
    for _ in range(3):
        body = query(slack_gateway, USERGROUPS)
        assert body["data"]["slack_usergroups_v1"] == []
    assert emulator.total_calls("POST /api/usergroups.list") == 1


def test_unknown_workspace_is_bad_user_input(slack_gateway: ServerThread) -> None:
    body = query(slack_gateway, USERGROUPS, workspace="no-such-workspace")
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "no-such-workspace" in error["message"]
    assert "coreos" in error["message"]


def test_slack_error_is_upstream_error_with_its_name_and_never_the_token(
    slack_gateway: ServerThread, slack: tuple[SlackEmulator, ServerThread]
) -> None:
    emulator, _ = slack
    emulator.state.token = "xoxb-rotated-token"
    body = query(slack_gateway, USERS)
    assert body["data"] is None
    error = body["errors"][0]
    assert error["extensions"]["code"] == "UPSTREAM_ERROR"
    assert error["extensions"]["error"] == "invalid_auth"
    assert "invalid_auth" in error["message"]
    assert TOKEN not in str(body)
    assert emulator.total_calls("POST /api/users.list") == 1, "an ok:false answer is not retried"


def test_transient_slack_error_in_an_http_200_is_retried(
    slack_gateway: ServerThread, slack: tuple[SlackEmulator, ServerThread]
) -> None:
    emulator, _ = slack
    emulator.fail(
        status=200,
        times=1,
        path_prefix="/api/usergroups.list",
        body={"ok": False, "error": "internal_error"},
    )
    body = query(slack_gateway, USERGROUPS)
    assert "errors" not in body
    assert len(body["data"]["slack_usergroups_v1"]) == 3
    assert emulator.total_calls("POST /api/usergroups.list") == 2


def test_persistent_transient_slack_error_is_upstream_unavailable(
    slack_gateway: ServerThread, slack: tuple[SlackEmulator, ServerThread]
) -> None:
    emulator, _ = slack
    emulator.fail(
        status=200,
        times=100,
        path_prefix="/api/usergroups.list",
        body={"ok": False, "error": "fatal_error"},
    )
    body = query(slack_gateway, USERGROUPS)
    error = body["errors"][0]
    assert error["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert error["extensions"]["error"] == "fatal_error"
    assert emulator.total_calls("POST /api/usergroups.list") > 1


def test_429_pauses_that_method_of_that_workspace_only(
    slack_gateway: ServerThread, slack: tuple[SlackEmulator, ServerThread]
) -> None:
    emulator, _ = slack
    emulator.fail(status=429, times=1, retry_after=120, path_prefix="/api/users.list")
    body = query(slack_gateway, USERS)
    assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_RATE_LIMITED"
    body = query(slack_gateway, USERS)
    assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_RATE_LIMITED"
    assert emulator.total_calls("POST /api/users.list") == 1, "the 429 paused the bucket"

    assert query(slack_gateway, CHANNELS)["data"]["slack_channels_v1"]
    other = query(slack_gateway, USERS, workspace="other")
    assert len(other["data"]["slack_users_v1"]) == 4
    assert emulator.total_calls("POST /api/users.list") == 4
