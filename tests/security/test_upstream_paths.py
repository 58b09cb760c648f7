"""Caller ids never reach an upstream URL unescaped: hostile ids are refused item by item."""

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gateway.errors import BadUserInput
from gateway.upstream import UpstreamPath
from tests.security.lookup_upstreams import (
    POLICIES,
    SCHEDULES,
    Upstreams,
    ask,
    errors_by_path,
    start_fixture,  # noqa: F401  (the `start` fixture)
    upstreams_fixture,  # noqa: F401  (the `upstreams` fixture)
)
from tests.support.server_thread import ServerThread

HOSTILE = [
    "../users?limit=100&x=",
    "PS00001/../PS00002",
    "..",
    "a\nb",
    "PS00001?x=1",
    "PS%2E%2E",
    "P#frag",
]
COLLABORATORS = """query C($repos: [String!]!) {
  github_repo_collaborators_v1(repos: $repos) { name collaborators { login } }
}"""
OWNERS = """query O($url: String!, $path: String!, $ref: String!) {
  vcs_owners_v1(repo_url: $url, path: $path, ref: $ref) { approvers }
}"""
ISSUES = """query I($keys: [String!]) {
  jira_issues_v1(instance: "redhat", keys: $keys) { key summary }
}"""
PROJECTS = """query J($keys: [String!]) {
  jira_projects_v1(instance: "redhat", keys: $keys) { key }
}"""
USERGROUPS = """query U($handles: [String!]) {
  slack_usergroups_v1(workspace: "coreos", handles: $handles) { handle }
}"""


@pytest.fixture
def server(start: Callable[..., ServerThread]) -> ServerThread:
    return start()


def assert_only_bad_input_items(body: dict[str, Any], field: str, ids: list[str]) -> None:
    """Each hostile item is null with its own BAD_USER_INPUT naming the item's index."""
    items = body["data"][field]
    errors = errors_by_path(body)
    for index, _ in enumerate(ids):
        assert items[index] is None, (index, items[index])
        error = errors[(field, index)]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", error
        assert error["extensions"]["request_id"]


def test_pagerduty_hostile_schedule_ids_are_refused_and_never_reach_another_path(
    server: ServerThread, upstreams: Upstreams
) -> None:
    body = ask(server, SCHEDULES, ids=[*HOSTILE, "PS00001"])
    assert_only_bad_input_items(body, "pagerduty_schedules_v1", HOSTILE)
    served = body["data"]["pagerduty_schedules_v1"][len(HOSTILE)]
    assert served == {"id": "PS00001", "users": [{"username": "alice"}]}
    assert dict(upstreams.pagerduty.raw_paths) == {"/schedules/PS00001/users": 1}


def test_pagerduty_hostile_policy_ids_are_refused_and_never_reach_another_path(
    server: ServerThread, upstreams: Upstreams
) -> None:
    body = ask(server, POLICIES, ids=HOSTILE)
    assert_only_bad_input_items(body, "pagerduty_escalation_policies_v1", HOSTILE)
    assert upstreams.pagerduty.total_calls() == 0


def test_one_control_character_fails_only_its_own_item(
    server: ServerThread, upstreams: Upstreams
) -> None:
    body = ask(server, SCHEDULES, ids=["PS00001", "a\nb"])
    first, second = body["data"]["pagerduty_schedules_v1"]
    assert first == {"id": "PS00001", "users": [{"username": "alice"}]}
    assert second is None
    (error,) = body["errors"]
    assert error["path"] == ["pagerduty_schedules_v1", 1]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "PagerDuty schedule id" in error["message"]


def test_github_hostile_repository_names_are_refused(
    server: ServerThread, upstreams: Upstreams
) -> None:
    hostile = [
        "app-sre/..",
        "app-sre/repo?per_page=1",
        "app-sre/repo#x",
        "app-sre/re po",
        "app-sre/" + "r" * 101,
        "app-sre/repo/../../orgs/app-sre/members",
    ]
    body = ask(server, COLLABORATORS, repos=[*hostile, "app-sre/repo"])
    assert_only_bad_input_items(body, "github_repo_collaborators_v1", hostile)
    assert body["data"]["github_repo_collaborators_v1"][-1]["collaborators"] == [{"login": "alice"}]
    assert set(upstreams.github.raw_paths) == {"/repos/app-sre/repo/collaborators"}


@pytest.mark.parametrize(
    ("path", "ref"),
    [
        ("/../../orgs/app-sre/members", "master"),
        ("/a/./b", "master"),
        ("/docs", "master?x=1"),
        ("/docs", "../../../orgs/app-sre"),
        ("/docs", "main\n"),
        ("/do\x00cs", "master"),
    ],
)
def test_vcs_owners_hostile_path_or_ref_is_refused_before_any_request(
    server: ServerThread, upstreams: Upstreams, path: str, ref: str
) -> None:
    url = "https://github.com/app-sre/repo"
    body = ask(server, OWNERS, url=url, path=path, ref=ref)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
    assert upstreams.github.total_calls() == 0


def test_vcs_owners_segments_are_escaped_one_by_one(
    server: ServerThread, upstreams: Upstreams
) -> None:
    url = "https://github.com/app-sre/repo"
    body = ask(server, OWNERS, url=url, path="/a dir/b%2Fc", ref="master")
    assert body["data"]["vcs_owners_v1"]["approvers"] == ["alice"]
    paths = set(upstreams.github.raw_paths)
    assert "/repos/app-sre/repo/contents/a%20dir/b%252Fc/OWNERS" in paths
    assert all(p.startswith("/repos/app-sre/repo/") for p in paths), paths


def test_jira_hostile_keys_are_refused_item_by_item(
    server: ServerThread, upstreams: Upstreams
) -> None:
    hostile = ["APPSRE-1/../x", "APPSRE-1\n", "1-APPSRE", "APPSRE-", "APP SRE-1"]
    body = ask(server, ISSUES, keys=[*hostile, "APPSRE-1"])
    assert_only_bad_input_items(body, "jira_issues_v1", hostile)
    assert body["data"]["jira_issues_v1"][-1]["key"] == "APPSRE-1"
    projects = ask(server, PROJECTS, keys=["APP/../SRE", "APPSRE"])
    assert_only_bad_input_items(projects, "jira_projects_v1", ["APP/../SRE"])
    assert projects["data"]["jira_projects_v1"][1] == {"key": "APPSRE"}
    assert set(upstreams.jira.raw_paths) <= {
        "/rest/api/3/issue/bulkfetch",
        "/rest/api/3/project/search",
    }


def test_slack_hostile_handles_never_reach_a_url(
    server: ServerThread, upstreams: Upstreams
) -> None:
    body = ask(server, USERGROUPS, handles=["../users.list?x=", "sre-team\n", "sre-team"])
    assert body["data"]["slack_usergroups_v1"] == [{"handle": "sre-team"}]
    assert all(
        path in {"/api/usergroups.list", "/api/users.list", "/api/conversations.list"}
        for path in upstreams.slack.raw_paths
    ), upstreams.slack.raw_paths


@pytest.mark.parametrize("value", ["..", ".", ""])
def test_the_upstream_path_refuses_dot_and_empty_segments(value: str) -> None:
    with pytest.raises(BadUserInput):
        UpstreamPath("/schedules/{}/users", value)


def test_the_upstream_path_refuses_a_template_with_pasted_values() -> None:
    with pytest.raises(ValueError, match="template"):
        UpstreamPath("/schedules/" + "../users?limit=100&x=" + "/users")


def test_every_segment_is_percent_encoded_on_the_wire(upstreams: Upstreams) -> None:
    path = UpstreamPath("/schedules/{}/users", "../users?limit=100&x=")
    response = httpx.get(upstreams.servers["pagerduty"].url + path.text, timeout=10)
    assert response.status_code == 404
    assert dict(upstreams.pagerduty.raw_paths) == {
        "/schedules/..%2Fusers%3Flimit%3D100%26x%3D/users": 1
    }
