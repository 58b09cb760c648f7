"""github-owners-api end to end in both modes: the CLI against the qontract-server stand-in, a
gateway (federating it, or not), the GitHub emulator and Redis, all over loopback HTTP."""

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reconcile_client.gql.qontract_server.github_owners_desired_state import (
    BotV1,
    PermissionGithubOrgTeamV1,
    PermissionV1,
    RoleV1,
    UserV1,
)
from reconcile_client.integrations.github_owners_api import desired_owners
from tests.client.conftest import run_cli
from tests.emulators.github import GitHubEmulator
from tests.emulators.qontract_bundle import BUNDLE_PATH, load_bundle_dict, ref, with_datafiles
from tests.emulators.qontract_server_standin import QontractServerStandin
from tests.federation.conftest import GH_TOKEN
from tests.support.gateway import graphql
from tests.support.server_thread import ServerThread
from tests.test_github_owners import READ, events

COMMAND = "github-owners-api"
ORGS = ("app-sre", "openshift")
SCHEMAS = [
    "/access/role-1.yml",
    "/access/user-1.yml",
    "/access/bot-1.yml",
    "/access/permission-1.yml",
]
EXPECTED = [
    "[dry-run] add_owner app-sre/owner-bot",
    "[dry-run] add_owner app-sre/zed-gh",
    "[dry-run] add_owner openshift/alice-gh",
    "[dry-run] add_owner openshift/owner-bot",
    "[dry-run] add_owner openshift/zed-gh",
]


def permission(name: str, org: str, role: str | None) -> dict[str, Any]:
    """A github-org-team permission datafile."""
    return {
        "$schema": "/access/permission-1.yml",
        "name": name,
        "description": f"{org} {role}",
        "labels": {},
        "service": "github-org-team",
        "org": org,
        "team": "team",
        **({"role": role} if role else {}),
    }


def role(name: str, *permissions: str, expires: str | None = None) -> dict[str, Any]:
    """A role datafile granting the permissions at `permissions`."""
    extra = {"expirationDate": expires} if expires else {}
    return {
        "$schema": "/access/role-1.yml",
        "name": name,
        "labels": {},
        "permissions": [ref(path) for path in permissions],
        **extra,
    }


def person(name: str, login: str, *roles: str) -> dict[str, Any]:
    """A user datafile in `roles`."""
    return {
        "$schema": "/access/user-1.yml",
        "name": name,
        "org_username": name,
        "github_username": login,
        "labels": {},
        "roles": [ref(path) for path in roles],
    }


def app_interface_bundle() -> dict[str, Any]:
    """The recorded bundle plus the integration and GitHub roles: `owners` (app-sre and
    openshift owners: Alice-GH, zed-gh and the bot Owner-Bot), `expired` (app-sre owner, gone)
    and `members` (app-sre, role member)."""
    bundle = load_bundle_dict(BUNDLE_PATH)
    yesterday = (datetime.now(tz=UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
    datafiles = {
        "/integrations/github-owners-api.yml": {
            "$schema": "/app-sre/integration-1.yml",
            "name": COMMAND,
            "description": "github-owners through the qontract-gateway",
            "labels": {},
            "schemas": SCHEMAS,
        },
        "/gh/permissions/app-sre-owner.yml": permission("app-sre-owner", "app-sre", "owner"),
        "/gh/permissions/openshift-owner.yml": permission("os-owner", "openshift", "owner"),
        "/gh/permissions/app-sre-member.yml": permission("app-sre-member", "app-sre", "member"),
        "/gh/roles/owners.yml": role(
            "gh-owners", "/gh/permissions/app-sre-owner.yml", "/gh/permissions/openshift-owner.yml"
        ),
        "/gh/roles/expired.yml": role(
            "gh-expired", "/gh/permissions/app-sre-owner.yml", expires=yesterday
        ),
        "/gh/roles/members.yml": role("gh-members", "/gh/permissions/app-sre-member.yml"),
        "/gh/users/alice.yml": person("gh-alice", "Alice-GH", "/gh/roles/owners.yml"),
        "/gh/users/zed.yml": person("gh-zed", "zed-gh", "/gh/roles/owners.yml"),
        "/gh/users/old.yml": person("gh-old", "old-gh", "/gh/roles/expired.yml"),
        "/gh/users/member.yml": person("gh-member", "member-gh", "/gh/roles/members.yml"),
        "/gh/bots/owner-bot.yml": {
            "$schema": "/access/bot-1.yml",
            "name": "owner-bot",
            "labels": {},
            "github_username": "Owner-Bot",
            "roles": [ref("/gh/roles/owners.yml")],
        },
    }
    result: dict[str, Any] = with_datafiles(bundle, datafiles)
    return result


@pytest.fixture
def app_interface() -> Iterator[QontractServerStandin]:
    """The stand-in serving the bundle above."""
    with QontractServerStandin(app_interface_bundle()) as server:
        yield server


@pytest.fixture
def github() -> Iterator[tuple[GitHubEmulator, ServerThread]]:
    """app-sre: alice-gh is an owner already, zed-gh a member; openshift: nobody; the bot and
    the other logins are GitHub accounts."""
    emulator = GitHubEmulator()
    state = emulator.state
    state.token = GH_TOKEN
    state.add_member("app-sre", "alice-gh", 1, "admin")
    state.add_member("app-sre", "zed-gh", 2)
    state.add_member("openshift", "someone", 3, "admin")
    for n, login in enumerate(("Owner-Bot", "old-gh", "member-gh"), start=10):
        state.add_user(login, n)
    with ServerThread(emulator.app) as server:
        yield emulator, server


@pytest.fixture
def federating_gateway(
    federated_factory: Callable[..., ServerThread],
    app_interface: QontractServerStandin,
    github: tuple[GitHubEmulator, ServerThread],
) -> ServerThread:
    """A gateway federating the stand-in, with GitHub accounts app-sre and openshift."""
    return federated_factory(app_interface.url, None, {org: github[1].url for org in ORGS})


@pytest.fixture
def plain_gateway(
    gateway_factory: Callable[..., ServerThread],
    github: tuple[GitHubEmulator, ServerThread],
    monkeypatch: pytest.MonkeyPatch,
) -> ServerThread:
    """A gateway that fronts no qontract-server, with the same GitHub accounts."""
    monkeypatch.setenv("QGW_TEST_GH_TOKEN", GH_TOKEN)
    accounts = [
        {"name": org, "api_url": github[1].url, "token": {"env": "QGW_TEST_GH_TOKEN"}}
        for org in ORGS
    ]
    return gateway_factory(upstreams={"github": accounts})


def federated_env(gateway: ServerThread) -> dict[str, str]:
    return {"QONTRACT_RECONCILE_API_GATEWAY__URL": f"{gateway.url}/graphql"}


def direct_env(gateway: ServerThread, app_interface: QontractServerStandin) -> dict[str, str]:
    return {
        **federated_env(gateway),
        "QONTRACT_RECONCILE_API_QONTRACT_SERVER__URL": app_interface.graphql_url,
    }


def dry_run_lines(stdout: str) -> list[str]:
    return sorted(line for line in stdout.splitlines() if line.startswith("[dry-run] "))


def test_federated_dry_run_reads_app_interface_through_the_gateway_and_lists_the_owners(
    federating_gateway: ServerThread,
    app_interface: QontractServerStandin,
    github: tuple[GitHubEmulator, ServerThread],
) -> None:
    sha = app_interface.latest_sha
    app_interface.reset()
    result = run_cli(COMMAND, env=federated_env(federating_gateway))
    assert result.returncode == 0, result.stderr
    assert dry_run_lines(result.stdout) == EXPECTED
    assert re.search(r"^task \S+: success, 5 action\(s\)$", result.stdout, re.MULTILINE)
    forwarded = [r for r in app_interface.graphql_requests() if b"__schema" not in r.body]
    assert {r.path for r in forwarded} == {f"/graphqlsha/{sha}"}, "pinned, via the gateway"
    assert any("GitHubOwnersDesiredState" in r.json()["query"] for r in forwarded)
    assert github[0].total_calls("PUT") == 0


def test_direct_dry_run_equals_the_federated_one(
    plain_gateway: ServerThread, app_interface: QontractServerStandin
) -> None:
    result = run_cli(COMMAND, env=direct_env(plain_gateway, app_interface))
    assert result.returncode == 0, result.stderr
    assert dry_run_lines(result.stdout) == EXPECTED


def test_org_option_narrows_the_run_and_an_org_without_owners_is_a_usage_error(
    plain_gateway: ServerThread, app_interface: QontractServerStandin
) -> None:
    env = direct_env(plain_gateway, app_interface)
    narrowed = run_cli(COMMAND, "--org", "openshift", env=env)
    assert narrowed.returncode == 0, narrowed.stderr
    assert dry_run_lines(narrowed.stdout) == [line for line in EXPECTED if "openshift/" in line]
    unknown = run_cli(COMMAND, "--org", "nope", env=env)
    assert unknown.returncode == 2
    assert "org 'nope' has no owners in app-interface" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_real_run_adds_the_owners_once_and_a_dry_run_then_finds_nothing(
    plain_gateway: ServerThread,
    app_interface: QontractServerStandin,
    github: tuple[GitHubEmulator, ServerThread],
    redis_url: str,
    namespace: str,
) -> None:
    emulator, _ = github
    env = direct_env(plain_gateway, app_interface)
    applied = run_cli("--no-dry-run", COMMAND, env=env)
    assert applied.returncode == 0, applied.stderr
    accepted = re.fullmatch(
        r"reconcile task (\S+) accepted \((pending|running)\)\n", applied.stdout
    )
    assert accepted, applied.stdout
    task = graphql(plain_gateway, READ, id=accepted.group(1))["data"]["reconcile_task_v1"]
    assert task["typed_result"]["applied_count"] == 5, task
    again = run_cli(COMMAND, env=env)
    assert again.returncode == 0, again.stderr
    assert dry_run_lines(again.stdout) == []
    assert emulator.state.owners("app-sre") == {"alice-gh", "zed-gh", "owner-bot"}
    assert emulator.state.owners("openshift") == {"someone", "alice-gh", "zed-gh", "owner-bot"}
    assert emulator.total_calls("PUT") == 5
    added = [p for t, p in events(redis_url, namespace) if t == "github-owners.add_owner"]
    assert {(p["org"], p["login"], p["task_id"]) for p in added} == {
        (line.split()[2].split("/")[0], line.split()[2].split("/")[1], accepted.group(1))
        for line in EXPECTED
    }


def test_an_unknown_login_fails_the_dry_run_with_exit_1_and_the_rest_is_listed(
    plain_gateway: ServerThread,
    app_interface: QontractServerStandin,
    github: tuple[GitHubEmulator, ServerThread],
) -> None:
    del github[0].state.users["owner-bot"]
    result = run_cli(COMMAND, env=direct_env(plain_gateway, app_interface))
    assert result.returncode == 1
    assert dry_run_lines(result.stdout) == [line for line in EXPECTED if "owner-bot" not in line]
    for org in ORGS:
        assert f"error: {org}/owner-bot: add_owner refused: GitHub has no such login" in (
            result.stdout
        )
    assert "failed: 2 error(s)" in result.stderr
    assert "Traceback" not in result.stderr
    assert github[0].total_calls("PUT") == 0


def test_the_flag_off_skips_with_exit_0(
    plain_gateway: ServerThread,
    app_interface: QontractServerStandin,
    github: tuple[GitHubEmulator, ServerThread],
) -> None:
    flags = {"QONTRACT_RECONCILE_API_FLAGS": '{"github-owners-api": false}'}
    result = run_cli(
        "--no-dry-run", COMMAND, env={**direct_env(plain_gateway, app_interface), **flags}
    )
    assert result.returncode == 0
    assert "feature toggle github-owners-api is off" in result.stderr
    assert github[0].total_calls() == 0


def test_desired_owners_are_lower_case_per_org_from_unexpired_owner_roles_only() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)

    def team(org: str, role_name: str | None) -> PermissionGithubOrgTeamV1:
        fields = {"__typename": "PermissionGithubOrgTeam_v1", "service": "github-org-team"}
        return PermissionGithubOrgTeamV1.model_validate({**fields, "org": org, "role": role_name})

    def a_role(expires: str | None, *permissions: PermissionV1, users: list[str]) -> RoleV1:
        return RoleV1(
            path="/r.yml",
            expirationDate=expires,
            users=[UserV1(github_username=login) for login in users],
            bots=[BotV1(github_username=None), BotV1(github_username="Bot-X")],
            permissions=list(permissions),
        )

    slack = PermissionV1.model_validate(
        {"__typename": "PermissionSlackUsergroup_v1", "service": "s"}
    )
    roles = [
        a_role(None, team("b-org", "owner"), team("a-org", "owner"), slack, users=["Ann"]),
        a_role("2026-06-01", team("a-org", "owner"), users=["expired-today"]),
        a_role("2026-06-02", team("a-org", "owner"), users=["ann", "Cy"]),
        a_role(None, team("a-org", "member"), team("a-org", None), users=["member"]),
        a_role(None, slack, users=["nobody"]),
    ]
    found = desired_owners(roles, now)
    assert [(o.org, o.owners) for o in found] == [
        ("a-org", ["ann", "bot-x", "cy"]),
        ("b-org", ["ann", "bot-x"]),
    ]
    assert [o.org for o in desired_owners(roles, now, "b-org")] == ["b-org"]


def test_an_org_the_gateway_has_no_account_for_is_exit_1_naming_the_configured_ones(
    gateway_factory: Callable[..., ServerThread],
    app_interface: QontractServerStandin,
    github: tuple[GitHubEmulator, ServerThread],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QGW_TEST_GH_TOKEN", GH_TOKEN)
    account = {"name": "app-sre", "api_url": github[1].url, "token": {"env": "QGW_TEST_GH_TOKEN"}}
    gateway = gateway_factory(upstreams={"github": [account]})
    result = run_cli(COMMAND, env=direct_env(gateway, app_interface))
    assert result.returncode == 1
    assert "unknown GitHub org 'openshift'; configured: app-sre" in result.stderr
    assert "Traceback" not in result.stderr
    assert github[0].total_calls() == 0
