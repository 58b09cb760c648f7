"""Every upstream emulator on loopback, and a gateway with auth on that uses all of them."""

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from gateway.auth import mint_token
from tests.emulators.base import UpstreamEmulator
from tests.emulators.github import GitHubEmulator
from tests.emulators.jira import JiraEmulator
from tests.emulators.pagerduty import PagerDutyEmulator
from tests.emulators.slack import SlackEmulator
from tests.support.gateway import graphql
from tests.support.server_thread import ServerThread

SECRET = "security-tests-secret-0123456789abcdef"
TOKENS = {"pagerduty": "pd-token-1", "github": "gh-token-2", "jira": "jira-token-3"}
SLACK_TOKEN = "xoxb-token-4"
GENEROUS = {"requests": 6000, "per_seconds": 60, "burst": 200}
SCHEDULES = """query S($ids: [String!]!) {
  pagerduty_schedules_v1(instance: "app-sre", ids: $ids) { id users { username } }
}"""
POLICIES = """query P($ids: [String!]!) {
  pagerduty_escalation_policies_v1(instance: "app-sre", ids: $ids) { id users { username } }
}"""


@dataclass
class Upstreams:
    """The running emulators and their servers."""

    pagerduty: PagerDutyEmulator
    github: GitHubEmulator
    jira: JiraEmulator
    slack: SlackEmulator
    servers: dict[str, ServerThread]

    def emulators(self) -> dict[str, UpstreamEmulator]:
        """Each emulator by system name."""
        return {
            "pagerduty": self.pagerduty,
            "github": self.github,
            "jira": self.jira,
            "slack": self.slack,
        }

    def settings(self, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
        """`upstreams:` settings naming one account per system (GitHub: org `app-sre`)."""
        for system, token in {**TOKENS, "slack": SLACK_TOKEN}.items():
            monkeypatch.setenv(f"QGW_SEC_{system.upper()}", token)

        def account(system: str, name: str, suffix: str = "") -> dict[str, Any]:
            return {
                "name": name,
                "api_url": self.servers[system].url + suffix,
                "token": {"env": f"QGW_SEC_{system.upper()}"},
                "rate_limit": GENEROUS,
            }

        return {
            "pagerduty": [account("pagerduty", "app-sre")],
            "github": [account("github", "app-sre")],
            "jira": [account("jira", "redhat")],
            "slack": [account("slack", "coreos", "/api")],
        }


@contextmanager
def running_upstreams() -> Iterator[Upstreams]:
    """Emulators with a little data each, served over real HTTP on 127.0.0.1."""
    pagerduty = PagerDutyEmulator()
    pagerduty.state.token = TOKENS["pagerduty"]
    pagerduty.state.add_user("U1", "alice@example.com")
    pagerduty.state.add_user("U2", "bob@example.com")
    pagerduty.state.oncall = {"PS00001": ["U1"], "PS00002": ["U2"]}
    pagerduty.state.policies = {"PE00001": [(30, [("schedule", "PS00001")])]}
    github = GitHubEmulator()
    github.state.token = TOKENS["github"]
    github.state.add_collaborator("app-sre/repo", "alice", 1, "admin")
    github.state.files[("app-sre/repo", "master")] = {"OWNERS": "approvers: [alice]"}
    jira = JiraEmulator()
    jira.state.token = TOKENS["jira"]
    jira.state.add_project("APPSRE", "10001", "App SRE")
    jira.state.add_issue("APPSRE-1", "Rotate tokens")
    slack = SlackEmulator()
    slack.state.token = SLACK_TOKEN
    slack.state.add_user("U1", "alice", "alice@example.com")
    slack.state.add_channel("C1", "sre")
    slack.state.add_usergroup("sre-team", users=["U1"], channels=["C1"])
    emulators: dict[str, UpstreamEmulator] = {
        "pagerduty": pagerduty,
        "github": github,
        "jira": jira,
        "slack": slack,
    }
    with ExitStack() as stack:
        servers = {
            name: stack.enter_context(ServerThread(emulator.app))
            for name, emulator in emulators.items()
        }
        yield Upstreams(pagerduty, github, jira, slack, servers)


def read_token() -> str:
    """A bearer token with the `read` scope only, as an integration holds."""
    return mint_token(SECRET, "security-tests", ["read"], expires_days=1)


@pytest.fixture(name="upstreams")
def upstreams_fixture() -> Iterator[Upstreams]:
    """Every emulator, running for one test (import this fixture to use it)."""
    with running_upstreams() as running:
        yield running


@pytest.fixture(name="start")
def start_fixture(
    gateway_factory: Callable[..., ServerThread],
    upstreams: Upstreams,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., ServerThread]:
    """`start(pagerduty_ttl=None, **settings)`: a gateway with auth on and every emulated
    upstream configured (import this fixture to use it)."""

    def factory(pagerduty_ttl: dict[str, float] | None = None, **settings: Any) -> ServerThread:
        accounts = upstreams.settings(monkeypatch)
        accounts["pagerduty"][0]["ttl"] = pagerduty_ttl or {}
        return gateway_factory(auth={"secret": SECRET}, upstreams=accounts, **settings)

    return factory


def ask(server: ServerThread, document: str, **variables: Any) -> dict[str, Any]:
    """POST `document` with a read-scope token; the JSON body."""
    return graphql(server, document, token=read_token(), **variables)


def errors_by_path(body: dict[str, Any]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Each error of a response by its path."""
    return {tuple(error.get("path") or ()): error for error in body.get("errors", [])}
