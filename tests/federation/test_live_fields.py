"""Slack and GitHub live fields on app-interface types: batched, keyed, and served in place."""

from collections.abc import Callable, Iterator

import pytest

from tests.emulators.github import GitHubEmulator
from tests.emulators.qontract_bundle import BUNDLE_PATH, add_datafile, load_bundle_dict
from tests.emulators.qontract_server_standin import QontractServerStandin
from tests.emulators.slack import SlackEmulator
from tests.federation.conftest import post
from tests.support.server_thread import ServerThread

SLACK_TOKEN = "xoxb-federation-token"
GENEROUS = {"requests": 6000, "per_seconds": 60, "burst": 100}


@pytest.fixture
def with_org() -> Iterator[QontractServerStandin]:
    """The recorded bundle plus a GithubOrg_v1 `app-sre`."""
    bundle = load_bundle_dict(BUNDLE_PATH)
    add_datafile(
        bundle,
        "/github/app-sre.yml",
        "/dependencies/github-org-1.yml",
        name="app-sre",
        description="App SRE org",
        url="https://github.com/app-sre",
        two_factor_authentication=True,
        token={"path": "creds/github", "field": "token"},
        labels={},
    )
    with QontractServerStandin(bundle) as server:
        yield server


@pytest.fixture
def live(
    with_org: QontractServerStandin,
    github: tuple[GitHubEmulator, ServerThread],
    federated_factory: Callable[..., ServerThread],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[ServerThread, SlackEmulator, GitHubEmulator]]:
    """A gateway with Slack workspace `coreos` and GitHub org `app-sre`."""
    emulator = SlackEmulator()
    state = emulator.state
    state.token = SLACK_TOKEN
    state.add_user("U1", "alice", "alice@example.com")
    state.add_user("U2", "bob", "bob@example.com")
    state.add_channel("C1", "sd-app-sre")
    state.add_channel("C2", "other")
    state.add_usergroup("app-sre-team", users=["U1", "U2"], channels=["C1"])
    state.add_usergroup("app-sre-ic", users=["U2"])
    github[0].state.add_member("app-sre", "alice-gh", 1)
    github[0].state.add_member("app-sre", "bob-gh", 2)
    monkeypatch.setenv("QGW_TEST_SLACK_TOKEN", SLACK_TOKEN)
    with ServerThread(emulator.app) as slack:
        workspace = {
            "name": "coreos",
            "api_url": f"{slack.url}/api",
            "token": {"env": "QGW_TEST_SLACK_TOKEN"},
            "rate_limit": GENEROUS,
        }
        gateway = federated_factory(
            with_org.url, github={"app-sre": github[1].url}, upstreams_extra={"slack": [workspace]}
        )
        yield gateway, emulator, github[0]


def test_slack_workspace_live_fields_and_a_users_slack_user(
    live: tuple[ServerThread, SlackEmulator, GitHubEmulator],
) -> None:
    """Usergroups, users and channels of the workspace by its `name`; a user's Slack user by
    org username (NOT_FOUND for one without); each Slack list fetched once."""
    gateway, slack, _ = live
    body = post(
        gateway.url,
        """{ slack_workspaces_v1 { name
          groups: live_usergroups(handles: ["app-sre-ic", "nope"]) { handle users }
          live_users(org_usernames: ["bob"]) { id org_username }
          live_channels(names: ["#sd-app-sre"]) { id name } }
        users_v1(org_username: "alice") { org_username slack_user(workspace: "coreos") { id } }
        carol: users_v1(org_username: "carol") { slack_user(workspace: "coreos") { id } } }""",
    )
    workspaces = {w["name"]: w for w in body["data"]["slack_workspaces_v1"]}
    coreos = workspaces["coreos"]
    assert coreos["groups"] == [{"handle": "app-sre-ic", "users": ["bob"]}]
    assert coreos["live_users"] == [{"id": "U2", "org_username": "bob"}]
    assert coreos["live_channels"] == [{"id": "C1", "name": "sd-app-sre"}]
    assert body["data"]["users_v1"] == [{"org_username": "alice", "slack_user": {"id": "U1"}}]
    assert body["data"]["carol"] == [{"slack_user": None}]
    errors = {tuple(e["path"]): e["extensions"]["code"] for e in body["errors"]}
    assert errors[("carol", 0, "slack_user")] == "NOT_FOUND"
    assert errors[("slack_workspaces_v1", 1, "groups")] == "BAD_USER_INPUT"  # no such account
    assert slack.total_calls("POST /api/users.list") + slack.total_calls("GET /api/users.list") == 1


def test_github_org_live_members(live: tuple[ServerThread, SlackEmulator, GitHubEmulator]) -> None:
    """The members of the org named in app-interface, read with the account of that name."""
    gateway, _, _ = live
    body = post(gateway.url, "{ githuborg_v1 { name live_members { login } } }")
    assert body["data"]["githuborg_v1"] == [
        {"name": "app-sre", "live_members": [{"login": "alice-gh"}, {"login": "bob-gh"}]}
    ]
