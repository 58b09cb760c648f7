"""The gateway as a Federation 2 subgraph: `@link` and keys in `_service`, checked `_entities`
resolved through the request loaders (one upstream batch per account and kind)."""

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.auth import mint_token
from tests.emulators.github import GitHubEmulator
from tests.emulators.jira import JiraEmulator
from tests.emulators.pagerduty import PagerDutyEmulator
from tests.emulators.slack import SlackEmulator
from tests.support.composer import (
    REQUIRE_VARIABLE,
    ComposerUnavailable,
    Composition,
    compose,
    ensure_installed,
    install_dir,
)
from tests.support.gateway import graphql
from tests.support.required import skip_unless_required
from tests.support.server_thread import ServerThread

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema" / "schema.graphql"
APP_INTERFACE = Path(__file__).resolve().parent / "app_interface.graphql"
TOKENS = {
    "QGW_TEST_FED_PD": "pd-fed-token-0123",
    "QGW_TEST_FED_SLACK": "xoxb-fed-token-0123",
    "QGW_TEST_FED_GITHUB": "gh-fed-token-0123",
    "QGW_TEST_FED_JIRA": "jira-fed-token-0123",
}
SECRET = "federation-test-secret-0123456789abcdef"
ENTITIES = """query Entities($r: [_Any!]!) {
  _entities(representations: $r) {
    __typename
    ... on PagerDutySchedule_v1 { instance id users { username } }
    ... on PagerDutyEscalationPolicy_v1 { instance id users { username } }
    ... on SlackUsergroup_v1 { workspace handle members: users channels }
    ... on SlackUser_v1 { workspace org_username id }
    ... on GitHubUser_v1 { login id }
    ... on JiraIssue_v1 { instance key summary }
    ... on JiraProject_v1 { instance key name }
    ... on VcsOwners_v1 { repo_url path ref approvers reviewers }
  }
}"""
SCHEDULES = [f"PS{n:02d}" for n in range(25)]
HANDLES = [f"team-{n:02d}" for n in range(50)]
LOGINS = [f"dev{n:02d}" for n in range(50)]
ISSUES = [f"APPSRE-{n}" for n in range(1, 51)]


@dataclass
class Upstreams:
    """The four emulators, each over real HTTP on loopback."""

    pagerduty: PagerDutyEmulator
    slack: SlackEmulator
    github: GitHubEmulator
    jira: JiraEmulator
    accounts: dict[str, list[dict[str, Any]]]


def _pagerduty() -> PagerDutyEmulator:
    emulator = PagerDutyEmulator()
    state = emulator.state
    state.token = TOKENS["QGW_TEST_FED_PD"]
    for n, schedule in enumerate(SCHEDULES):
        state.add_user(f"U{n:02d}", f"oncall{n:02d}@example.com")
        state.oncall[schedule] = [f"U{n:02d}"]
    state.policies = {"EP1": [(0, [("schedule", "PS00")]), (30, [("user", "U01")])]}
    return emulator


def _slack() -> SlackEmulator:
    emulator = SlackEmulator()
    state = emulator.state
    state.token = TOKENS["QGW_TEST_FED_SLACK"]
    state.add_channel("C1", "sre")
    for n, handle in enumerate(HANDLES):
        state.add_user(f"W{n:02d}", f"member{n:02d}", f"member{n:02d}@example.com")
        state.add_usergroup(handle, users=[f"W{n:02d}"], channels=["C1"])
    return emulator


def _github() -> GitHubEmulator:
    emulator = GitHubEmulator()
    emulator.state.token = TOKENS["QGW_TEST_FED_GITHUB"]
    for n, login in enumerate(LOGINS):
        emulator.state.add_member("app-sre", login, 1000 + n)
    emulator.state.files[("app-sre/repo", "main")] = {"OWNERS": "approvers: [alice]"}
    return emulator


def _jira() -> JiraEmulator:
    emulator = JiraEmulator()
    emulator.state.token = TOKENS["QGW_TEST_FED_JIRA"]
    emulator.state.add_project("APPSRE", "10001", "App SRE")
    for key in ISSUES:
        emulator.state.add_issue(key, f"Task {key}")
    return emulator


@pytest.fixture
def upstreams(monkeypatch: pytest.MonkeyPatch) -> Iterator[Upstreams]:
    for variable, token in TOKENS.items():
        monkeypatch.setenv(variable, token)
    pagerduty, slack, github, jira = _pagerduty(), _slack(), _github(), _jira()
    with ExitStack() as stack:
        urls = [
            stack.enter_context(ServerThread(e.app)).url for e in (pagerduty, slack, github, jira)
        ]
        urls[1] += "/api"
        names = zip(
            ("pagerduty", "slack", "github", "jira"),
            ("app-sre", "coreos", "app-sre", "redhat"),
            urls,
            TOKENS,
            strict=True,
        )
        accounts = {
            system: [{"name": name, "api_url": url, "token": {"env": variable}}]
            for system, name, url, variable in names
        }
        yield Upstreams(pagerduty, slack, github, jira, accounts)


@pytest.fixture
def subgraph_factory(
    gateway_factory: Callable[..., ServerThread], upstreams: Upstreams
) -> Callable[..., ServerThread]:
    def factory(**settings: Any) -> ServerThread:
        return gateway_factory(upstreams=upstreams.accounts, **settings)

    return factory


@pytest.fixture
def subgraph(subgraph_factory: Callable[..., ServerThread]) -> ServerThread:
    return subgraph_factory()


def entities(server: ServerThread, representations: list[Any], **kwargs: Any) -> dict[str, Any]:
    return graphql(server, ENTITIES, r=representations, **kwargs)


def codes_by_index(body: dict[str, Any]) -> dict[int, str]:
    return {e["path"][1]: e["extensions"]["code"] for e in body.get("errors", [])}


def test_service_sdl_is_the_gateway_schema_with_link_and_keys(subgraph: ServerThread) -> None:
    sdl = graphql(subgraph, "{ _service { sdl } }")["data"]["_service"]["sdl"]
    assert sdl.startswith(
        'schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])'
    )
    for declaration in (
        'type PagerDutySchedule_v1 @key(fields: "instance id")',
        'type PagerDutyEscalationPolicy_v1 @key(fields: "instance id")',
        'type SlackUsergroup_v1 @key(fields: "workspace handle")',
        'type SlackUser_v1 @key(fields: "workspace org_username")',
        'type GitHubUser_v1 @key(fields: "login")',
        'type JiraIssue_v1 @key(fields: "instance key")',
        'type JiraProject_v1 @key(fields: "instance key")',
        'type VcsOwners_v1 @key(fields: "repo_url path ref")',
        "_entities(representations: [_Any!]!): [_Entity]!",
    ):
        assert declaration in sdl
    assert sdl + "\n" == SCHEMA_FILE.read_text()
    for app_interface_type in ("User_v1", "PagerDutyTarget_v1", "SlackWorkspace_v1", "Query_v1"):
        assert f"type {app_interface_type} " not in sdl


def test_fifty_schedules_and_the_root_field_share_one_batch_each_schedule_fetched_once(
    subgraph: ServerThread, upstreams: Upstreams
) -> None:
    asked = [SCHEDULES[n % len(SCHEDULES)] for n in range(50)]
    document = ENTITIES.replace(
        "query Entities($r: [_Any!]!) {",
        "query Entities($r: [_Any!]!, $ids: [String!]!) {\n"
        '  pagerduty_schedules_v1(instance: "app-sre", ids: $ids) { id }',
    )
    body = graphql(
        subgraph,
        document,
        r=[
            {"__typename": "PagerDutySchedule_v1", "instance": "app-sre", "id": i}
            for i in [*asked, "PNONE"]
        ],
        ids=SCHEDULES,
    )
    assert [s["id"] for s in body["data"]["pagerduty_schedules_v1"]] == SCHEDULES
    *items, unknown = body["data"]["_entities"]
    assert [(e["instance"], e["id"]) for e in items] == [("app-sre", i) for i in asked]
    assert [e["users"] for e in items] == [[{"username": f"oncall{int(i[2:]):02d}"}] for i in asked]
    assert unknown is None
    assert codes_by_index(body) == {50: "NOT_FOUND"}
    assert upstreams.pagerduty.total_calls("GET /schedules/") == len(SCHEDULES) + 1
    for schedule in SCHEDULES:
        assert upstreams.pagerduty.total_calls(f"GET /schedules/{schedule}/users") == 1


def test_fifty_jira_issues_are_one_bulk_fetch_and_an_unknown_key_is_not_found(
    subgraph: ServerThread, upstreams: Upstreams
) -> None:
    asked = [*ISSUES[:49], "APPSRE-999"]
    body = entities(
        subgraph, [{"__typename": "JiraIssue_v1", "instance": "redhat", "key": k} for k in asked]
    )
    items = body["data"]["_entities"]
    assert [e["key"] for e in items[:49]] == ISSUES[:49]
    assert items[0] == {
        "__typename": "JiraIssue_v1",
        "instance": "redhat",
        "key": "APPSRE-1",
        "summary": "Task APPSRE-1",
    }
    assert items[49] is None
    assert codes_by_index(body) == {49: "NOT_FOUND"}
    assert body["errors"][0]["path"] == ["_entities", 49]
    assert upstreams.jira.total_calls("POST /rest/api/3/issue/bulkfetch") == 1


def test_fifty_slack_usergroups_and_users_are_one_list_call_each(
    subgraph: ServerThread, upstreams: Upstreams
) -> None:
    groups = [
        {"__typename": "SlackUsergroup_v1", "workspace": "coreos", "handle": h} for h in HANDLES
    ]
    users = [
        {"__typename": "SlackUser_v1", "workspace": "coreos", "org_username": f"member{n:02d}"}
        for n in range(50)
    ]
    missing = {"__typename": "SlackUsergroup_v1", "workspace": "coreos", "handle": "nobody"}
    body = entities(subgraph, [*groups, *users, missing])
    items = body["data"]["_entities"]
    assert items[7] == {
        "__typename": "SlackUsergroup_v1",
        "workspace": "coreos",
        "handle": "team-07",
        "members": ["member07"],
        "channels": ["sre"],
    }
    assert items[57] == {
        "__typename": "SlackUser_v1",
        "workspace": "coreos",
        "org_username": "member07",
        "id": "W07",
    }
    assert items[100] is None
    assert codes_by_index(body) == {100: "NOT_FOUND"}
    assert upstreams.slack.total_calls("POST /api/usergroups.list") == 1
    assert upstreams.slack.total_calls("POST /api/users.list") == 1


def test_fifty_github_users_are_one_org_members_call(
    subgraph: ServerThread, upstreams: Upstreams
) -> None:
    asked = [*LOGINS[:48], "DEV00", "stranger"]
    body = entities(subgraph, [{"__typename": "GitHubUser_v1", "login": x} for x in asked])
    items = body["data"]["_entities"]
    assert items[3] == {"__typename": "GitHubUser_v1", "login": "dev03", "id": "1003"}
    assert items[48] == {"__typename": "GitHubUser_v1", "login": "dev00", "id": "1000"}
    assert items[49] is None
    assert codes_by_index(body) == {49: "NOT_FOUND"}
    assert upstreams.github.total_calls("GET /orgs/app-sre/members") == 1


def test_policy_project_and_owners_entities_resolve(subgraph: ServerThread) -> None:
    body = entities(
        subgraph,
        [
            {"__typename": "PagerDutyEscalationPolicy_v1", "instance": "app-sre", "id": "EP1"},
            {"__typename": "JiraProject_v1", "instance": "redhat", "key": "APPSRE"},
            {
                "__typename": "VcsOwners_v1",
                "repo_url": "https://github.com/app-sre/repo",
                "path": "/",
                "ref": "main",
            },
        ],
    )
    assert "errors" not in body
    policy, project, owners = body["data"]["_entities"]
    assert policy["users"] == [{"username": "oncall00"}, {"username": "oncall01"}]
    assert project == {
        "__typename": "JiraProject_v1",
        "instance": "redhat",
        "key": "APPSRE",
        "name": "App SRE",
    }
    assert owners["approvers"] == ["alice"]


def test_bad_representations_are_bad_user_input_items_and_never_reach_upstreams(
    subgraph: ServerThread, upstreams: Upstreams
) -> None:
    schedule = {"__typename": "PagerDutySchedule_v1", "instance": "app-sre"}
    bad: list[Any] = [
        "not an object",
        {"id": "PS00"},
        {"__typename": "Query", "id": "PS00"},
        {"__typename": "PagerDutyUser_v1", "id": "U00"},
        {**schedule},
        {**schedule, "id": "PS00", "extra": "x"},
        {**schedule, "id": 7},
        {**schedule, "id": "../users/U00"},
        {**schedule, "id": "PS00?x=1"},
        {**schedule, "id": "P" * 129},
        {**schedule, "id": ""},
        {**schedule, "id": ".."},
        {"__typename": "VcsOwners_v1", "repo_url": "https://x/a/b", "path": "a\nb", "ref": "m"},
        {"__typename": "VcsOwners_v1", "repo_url": "https://x/a/b", "path": "../..", "ref": "m"},
        {**schedule, "instance": "no-such-account", "id": "PS00"},
    ]
    body = entities(subgraph, [*bad, {**schedule, "id": "PS01"}])
    items = body["data"]["_entities"]
    assert items[:-1] == [None] * len(bad)
    assert items[-1]["users"] == [{"username": "oncall01"}]
    assert codes_by_index(body) == dict.fromkeys(range(len(bad)), "BAD_USER_INPUT")
    messages = [e["message"] for e in body["errors"]]
    assert "__typename 'Query' is not an entity here" in messages[2]
    assert "needs exactly the key fields 'id instance', got 'instance id extra'" in messages[5]
    assert all(len(m) < 400 for m in messages)
    assert all(e["extensions"]["request_id"] for e in body["errors"])
    assert upstreams.pagerduty.total_calls() == 1
    assert upstreams.github.total_calls() == 0


def test_more_representations_than_the_limit_refuse_the_field_before_any_fetch(
    subgraph_factory: Callable[..., ServerThread], upstreams: Upstreams
) -> None:
    server = subgraph_factory(limits={"max_entity_representations": 5})
    asked = [{"__typename": "JiraIssue_v1", "instance": "redhat", "key": k} for k in ISSUES[:6]]
    body = entities(server, asked)
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] == "_entities takes at most 5 representations, got 6"
    assert entities(server, asked[:5])["data"]["_entities"][4]["key"] == "APPSRE-5"
    assert upstreams.jira.total_calls() == 1


def test_entities_need_the_read_scope(subgraph_factory: Callable[..., ServerThread]) -> None:
    server = subgraph_factory(auth={"secret": SECRET})
    asked = [{"__typename": "GitHubUser_v1", "login": "dev01"}]
    anonymous = entities(server, asked)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    writer = mint_token(SECRET, "listener", ["events"], expires_days=1)
    assert entities(server, asked, token=writer)["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    reader = mint_token(SECRET, "reader", ["read"], expires_days=1)
    assert entities(server, asked, token=reader)["data"]["_entities"][0]["id"] == "1001"


@pytest.fixture(scope="module")
def composer() -> Callable[[dict[str, Path]], Composition]:
    """The pinned npm composer (installed on first use); skipped only without node or npm."""
    try:
        directory = ensure_installed(install_dir())
    except ComposerUnavailable as missing:
        skip_unless_required(str(missing), REQUIRE_VARIABLE)

    def run(subgraphs: dict[str, Path]) -> Composition:
        try:
            return compose(directory, subgraphs)
        except ComposerUnavailable as missing:
            skip_unless_required(str(missing), REQUIRE_VARIABLE)

    return run


def test_gateway_and_a_toy_app_interface_subgraph_compose(
    composer: Callable[[dict[str, Path]], Composition],
) -> None:
    result = composer({"gateway": SCHEMA_FILE, "app-interface": APP_INTERFACE})
    assert result.errors == []
    assert result.supergraph is not None
    assert (
        "type PagerDutySchedule_v1"
        ' @join__type(graph: APP_INTERFACE, key: "instance id", resolvable: false)'
        ' @join__type(graph: GATEWAY, key: "instance id")'
    ) in result.supergraph
    assert "users: [PagerDutyUser_v1!]! @join__field(graph: GATEWAY)" in result.supergraph
    for entity, key in (
        ("GitHubUser_v1", "login"),
        ("JiraIssue_v1", "instance key"),
        ("SlackUser_v1", "workspace org_username"),
        ("VcsOwners_v1", "repo_url path ref"),
    ):
        assert f'type {entity} @join__type(graph: GATEWAY, key: "{key}")' in result.supergraph


def test_the_composer_refuses_a_subgraph_that_redefines_a_gateway_field(
    composer: Callable[[dict[str, Path]], Composition], tmp_path: Path
) -> None:
    clash = tmp_path / "clash.graphql"
    clash.write_text(
        APP_INTERFACE.read_text().replace(
            "  instance: String!\n  id: String!\n}",
            "  instance: String!\n  id: String!\n  users: [String]\n}",
            1,
        )
    )
    assert "users: [String]" in clash.read_text()
    result = composer({"gateway": SCHEMA_FILE, "app-interface": clash})
    assert result.supergraph is None
    assert any("PagerDutySchedule_v1.users" in error for error in result.errors), result.errors


def test_representations_written_in_the_document_are_checked_alike(subgraph: ServerThread) -> None:
    document = """{
      _entities(representations: [{__typename: "GitHubUser_v1", login: "dev01"}, 42, "x"]) {
        ... on GitHubUser_v1 { login id }
      }
    }"""
    body = graphql(subgraph, document)
    assert body["data"]["_entities"] == [{"login": "dev01", "id": "1001"}, None, None]
    assert codes_by_index(body) == {1: "BAD_USER_INPUT", 2: "BAD_USER_INPUT"}
