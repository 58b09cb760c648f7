"""Slack and GitHub live fields on app-interface types: batched, keyed, and served in place."""

from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.emulators.github import GitHubEmulator
from tests.emulators.jira import JiraEmulator
from tests.emulators.pagerduty import PagerDutyEmulator
from tests.emulators.qontract_bundle import (
    BUNDLE_PATH,
    add_datafile,
    bundle_sha,
    load_bundle_dict,
    ref,
)
from tests.emulators.qontract_server_standin import QontractServerStandin
from tests.emulators.slack import SlackEmulator
from tests.federation.conftest import post
from tests.support.server_thread import ServerThread

SHA = bundle_sha(BUNDLE_PATH)
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


def test_reverse_joins_fetch_app_interface_users_batched_on_the_same_sha(
    standin: QontractServerStandin,
    pagerduty: tuple[PagerDutyEmulator, ServerThread],
    federated_factory: Callable[..., ServerThread],
) -> None:
    """On-call users and schedule users back to their app-interface user: one batched
    qontract-server fetch with the generic filter (two sub-selections, schedules and escalation
    policies looked up by separate documents), pinned to the request's sha."""
    gateway = federated_factory(standin.url, {"app-sre": pagerduty[1].url})
    standin.reset()
    body = post(
        gateway.url,
        """{ permissions_v1 { ... on PermissionSlackUsergroup_v1 { handle pagerduty {
          name oncall_users { username app_interface_user { who: org_username name labels } } } } }
        direct: pagerduty_schedules_v1(instance: "app-sre", ids: ["PSCHED1"]) {
          users { username app_interface_user { org_username } } } }""",
        path=f"/graphqlsha/{SHA}",
    )
    requests = standin.graphql_requests()
    direct_answer = httpx.post(
        f"{standin.url}/graphqlsha/{SHA}",
        json={"query": '{ users_v1(org_username: "alice") { labels } }'},
    ).json()
    labels = direct_answer["data"]["users_v1"][0]["labels"]  # a JSON scalar: a string
    assert isinstance(labels, str)
    targets = {
        t["name"]: t["oncall_users"]
        for p in body["data"]["permissions_v1"]
        for t in p.get("pagerduty") or []
    }
    assert targets["app-sre-primary"] == [
        {
            "username": "alice",
            "app_interface_user": {"who": "alice", "name": "Alice Archer", "labels": labels},
        },
        {"username": "bob", "app_interface_user": None},
    ]
    direct = body["data"]["direct"][0]["users"]
    assert direct[0] == {"username": "alice", "app_interface_user": {"org_username": "alice"}}
    assert {tuple(e["path"][-3:]) for e in body["errors"]} >= {("users", 1, "app_interface_user")}
    assert {e["extensions"]["code"] for e in body["errors"]} == {"NOT_FOUND"}
    assert all(r.path == f"/graphqlsha/{SHA}" for r in requests)
    reverse = [r for r in requests if b"GatewayReverseJoin" in r.body]
    assert len(requests) == 1 + len(reverse)
    assert any(b'["alice","bob"]' in r.body for r in reverse)  # keys of many parents, one fetch
    assert len(reverse) == 1  # both sub-selections, every wave of on-call lookups: one fetch


@pytest.fixture
def with_board() -> Iterator[QontractServerStandin]:
    """The recorded bundle plus Jira server `redhat` and boards APPSRE and GONE on it."""
    bundle = load_bundle_dict(BUNDLE_PATH)
    add_datafile(
        bundle,
        "/jira/servers/redhat.yml",
        "/dependencies/jira-server-1.yml",
        name="redhat",
        description="Jira",
        serverUrl="https://issues.example.com",
        username="bot",
        token={"path": "creds/jira", "field": "token"},
        labels={},
    )
    for name in ("APPSRE", "GONE"):
        add_datafile(
            bundle,
            f"/jira/boards/{name.lower()}.yml",
            "/dependencies/jira-board-1.yml",
            name=name,
            description="board",
            server=ref("/jira/servers/redhat.yml"),
            severityPriorityMappings=ref("/jira/servers/redhat.yml"),
            labels={},
        )
    with QontractServerStandin(bundle) as server:
        yield server


def test_jira_board_live_project_and_issues(
    with_board: QontractServerStandin,
    federated_factory: Callable[..., ServerThread],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A board's project by its key on the account named like its server, and its issues
    narrowed by `jql`; an unknown project is null with NOT_FOUND."""
    emulator = JiraEmulator()
    emulator.state.token = "jira-federation-token"
    emulator.state.add_project("APPSRE", "10001", "App SRE")
    emulator.state.add_issue("APPSRE-1", "Rotate tokens", labels=["toil"])
    emulator.state.add_issue("APPSRE-2", "Write docs")
    monkeypatch.setenv("QGW_TEST_JIRA_TOKEN", "jira-federation-token")
    with ServerThread(emulator.app) as jira:
        account = {"name": "redhat", "api_url": jira.url, "token": {"env": "QGW_TEST_JIRA_TOKEN"}}
        gateway = federated_factory(with_board.url, upstreams_extra={"jira": [account]})
        body = post(
            gateway.url,
            """{ jira_boards_v1 { name live_project { key name }
              live_issues(jql: "labels = toil") { key } } }""",
        )
    boards = {b["name"]: b for b in body["data"]["jira_boards_v1"]}
    assert boards["APPSRE"] == {
        "name": "APPSRE",
        "live_project": {"key": "APPSRE", "name": "App SRE"},
        "live_issues": [{"key": "APPSRE-1"}],
    }
    assert boards["GONE"]["live_project"] is None
    codes = {tuple(e["path"][-1:]): e["extensions"]["code"] for e in body["errors"]}
    assert codes[("live_project",)] == "NOT_FOUND"
