"""Jira issues and projects through the gateway: by key or JQL, paged, cached, per-item errors."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from tests.emulators.jira import JiraEmulator
from tests.support.gateway import graphql
from tests.support.server_thread import ServerThread

TOKEN = "jira-secret-token-value-321"
BY_KEYS = """query Issues($keys: [String!]) {
  jira_issues_v1(instance: "redhat", keys: $keys) {
    key summary status labels assignee { account_id display_name email }
  }
}"""
BY_JQL = """query Search($jql: String) {
  jira_issues_v1(instance: "redhat", jql: $jql) { key status labels }
}"""
PROJECTS = """query Projects($keys: [String!]) {
  jira_projects_v1(instance: "redhat", keys: $keys) { key id name }
}"""


@pytest.fixture
def jira() -> Iterator[tuple[JiraEmulator, ServerThread]]:
    emulator = JiraEmulator()
    state = emulator.state
    state.token = TOKEN
    state.add_project("APPSRE", "10001", "App SRE")
    state.add_project("EMPTY", "10002", "Nothing here")
    for index in range(1, 131):
        labels = ["toil"] if index % 10 == 0 else []
        state.add_issue(f"APPSRE-{index}", f"Task {index}", labels=labels)
    state.add_issue("APPSRE-1", "Rotate tokens", "In Progress", "alice@example.com", ["security"])
    with ServerThread(emulator.app) as server:
        yield emulator, server


@pytest.fixture
def jira_gateway(
    gateway_factory: Callable[..., ServerThread],
    jira: tuple[JiraEmulator, ServerThread],
    monkeypatch: pytest.MonkeyPatch,
) -> ServerThread:
    monkeypatch.setenv("QGW_TEST_JIRA_TOKEN", TOKEN)
    _, upstream = jira
    account = {
        "name": "redhat",
        "api_url": upstream.url,
        "token": {"env": "QGW_TEST_JIRA_TOKEN"},
        "rate_limit": {"requests": 600, "per_seconds": 60, "burst": 10},
    }
    return gateway_factory(upstreams={"jira": [account]})


def query(server: ServerThread, document: str, **variables: Any) -> dict[str, Any]:
    return graphql(server, document, **variables)


def test_issues_by_key_have_their_fields_and_a_missing_key_is_a_not_found_item(
    jira_gateway: ServerThread, jira: tuple[JiraEmulator, ServerThread]
) -> None:
    emulator, _ = jira
    body = query(jira_gateway, BY_KEYS, keys=["APPSRE-1", "APPSRE-404", "appsre-2"])
    first, missing, second = body["data"]["jira_issues_v1"]
    assert first == {
        "key": "APPSRE-1",
        "summary": "Rotate tokens",
        "status": "In Progress",
        "labels": ["security"],
        "assignee": {
            "account_id": "acc-alice",
            "display_name": "Alice",
            "email": "alice@example.com",
        },
    }
    assert missing is None
    assert second["key"] == "APPSRE-2"
    assert second["assignee"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert error["path"] == ["jira_issues_v1", 1]
    assert emulator.total_calls("POST /rest/api/3/issue/bulkfetch") == 1, "one bulk call"


def test_issues_by_key_are_cached_per_key(
    jira_gateway: ServerThread, jira: tuple[JiraEmulator, ServerThread]
) -> None:
    emulator, _ = jira
    query(jira_gateway, BY_KEYS, keys=["APPSRE-1"])
    body = query(jira_gateway, BY_KEYS, keys=["APPSRE-1", "APPSRE-3"])
    assert [p["outcome"] for p in body["extensions"]["provenance"]] == ["hit", "miss"]
    assert emulator.total_calls("POST /rest/api/3/issue/bulkfetch") == 2


def test_jql_search_follows_next_page_tokens(
    jira_gateway: ServerThread, jira: tuple[JiraEmulator, ServerThread]
) -> None:
    emulator, _ = jira
    body = query(jira_gateway, BY_JQL, jql="project = APPSRE ORDER BY key")
    issues = body["data"]["jira_issues_v1"]
    assert len(issues) == 130
    assert issues[0]["key"] == "APPSRE-1"
    assert issues[-1]["key"] == "APPSRE-130"
    assert emulator.total_calls("POST /rest/api/3/search/jql") == 2


def test_jql_result_is_cached_and_an_empty_result_too(
    jira_gateway: ServerThread, jira: tuple[JiraEmulator, ServerThread]
) -> None:
    emulator, _ = jira
    for _ in range(3):
        labelled = query(jira_gateway, BY_JQL, jql="project = APPSRE AND labels = toil")
        empty = query(jira_gateway, BY_JQL, jql="project = EMPTY")
        assert len(labelled["data"]["jira_issues_v1"]) == 13
        assert empty["data"]["jira_issues_v1"] == []
    assert emulator.total_calls("POST /rest/api/3/search/jql") == 2


def test_jql_jira_rejects_is_bad_user_input(jira_gateway: ServerThread) -> None:
    body = query(jira_gateway, BY_JQL, jql="this is not jql")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    "arguments", ["", 'keys: ["APPSRE-1"], jql: "project = APPSRE"'], ids=["none", "both"]
)
def test_issues_need_exactly_one_of_keys_or_jql(
    jira_gateway: ServerThread, jira: tuple[JiraEmulator, ServerThread], arguments: str
) -> None:
    emulator, _ = jira
    document = f'{{ jira_issues_v1(instance: "redhat", {arguments}) {{ key }} }}'
    body = query(jira_gateway, document.replace(", )", ")"))
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert emulator.total_calls() == 0


def test_unknown_instance_is_bad_user_input(jira_gateway: ServerThread) -> None:
    body = query(jira_gateway, BY_KEYS.replace('"redhat"', '"elsewhere"'), keys=["APPSRE-1"])
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "redhat" in body["errors"][0]["message"]


def test_projects_by_key_and_all_projects(
    jira_gateway: ServerThread, jira: tuple[JiraEmulator, ServerThread]
) -> None:
    emulator, _ = jira
    body = query(jira_gateway, PROJECTS, keys=["APPSRE", "NOPE"])
    assert body["data"]["jira_projects_v1"] == [
        {"key": "APPSRE", "id": "10001", "name": "App SRE"},
        None,
    ]
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    everything = query(jira_gateway, PROJECTS, keys=None)["data"]["jira_projects_v1"]
    assert [p["key"] for p in everything] == ["APPSRE", "EMPTY"]
    query(jira_gateway, PROJECTS, keys=["APPSRE"])
    assert emulator.total_calls("GET /rest/api/3/project/search") == 2


def test_jira_429_pauses_the_instance_bucket(
    jira_gateway: ServerThread, jira: tuple[JiraEmulator, ServerThread]
) -> None:
    emulator, _ = jira
    emulator.fail(status=429, retry_after=120, path_prefix="/rest/api/3/search")
    body = query(jira_gateway, BY_JQL, jql="project = APPSRE")
    assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_RATE_LIMITED"
    body = query(jira_gateway, BY_KEYS, keys=["APPSRE-1"])
    assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_RATE_LIMITED"
    assert emulator.total_calls("POST /rest/api/3/issue") == 0


def test_token_never_appears_in_responses_or_redis_keys(
    jira_gateway: ServerThread, jira: tuple[JiraEmulator, ServerThread], redis_url: str
) -> None:
    emulator, _ = jira
    query(jira_gateway, BY_KEYS, keys=["APPSRE-1"])
    emulator.fail(status=401, path_prefix="/rest/api/3/search")
    body = query(jira_gateway, BY_JQL, jql="project = APPSRE")
    assert TOKEN not in str(body)
    keys = redis.Redis.from_url(redis_url).keys("*")
    assert keys
    assert not any(TOKEN.encode() in k for k in keys)
