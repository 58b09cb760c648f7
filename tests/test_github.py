"""GitHub org members and repo collaborators through the gateway: paged, cached, rate-aware."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from tests.emulators.github import GitHubEmulator
from tests.support.gateway import graphql
from tests.support.server_thread import ServerThread

TOKEN = "ghp-secret-token-value-456"
MEMBERS = """query Members($org: String!) {
  github_org_members_v1(org: $org) { login id }
}"""
COLLABORATORS = """query Collaborators($repos: [String!]!) {
  github_repo_collaborators_v1(repos: $repos) {
    name collaborators { login id role_name permissions { admin push pull } }
  }
}"""
SECONDARY_LIMIT: dict[str, object] = {
    "message": "You have exceeded a secondary rate limit. Please wait a few minutes.",
    "documentation_url": "https://docs.github.com/rest",
}


@pytest.fixture
def github() -> Iterator[tuple[GitHubEmulator, ServerThread]]:
    emulator = GitHubEmulator()
    state = emulator.state
    state.token = TOKEN
    for index in range(250):
        state.add_member("app-sre", f"user{index:03d}", 1000 + index)
    state.members["empty-org"] = []
    state.add_collaborator("app-sre/qontract-reconcile", "alice", 1, "admin")
    state.add_collaborator("app-sre/qontract-reconcile", "bob", 2, "read")
    state.collaborators["empty-org/lonely"] = []
    with ServerThread(emulator.app) as server:
        yield emulator, server


@pytest.fixture
def gh_gateway(
    gateway_factory: Callable[..., ServerThread],
    github: tuple[GitHubEmulator, ServerThread],
    monkeypatch: pytest.MonkeyPatch,
) -> ServerThread:
    monkeypatch.setenv("QGW_TEST_GH_TOKEN", TOKEN)
    _, upstream = github
    accounts = [
        {"name": org, "api_url": upstream.url, "token": {"env": "QGW_TEST_GH_TOKEN"}}
        for org in ("app-sre", "empty-org")
    ]
    return gateway_factory(upstreams={"github": accounts})


def query(server: ServerThread, document: str, **variables: Any) -> dict[str, Any]:
    return graphql(server, document, **variables)


def test_org_members_follow_link_pagination_across_pages(
    gh_gateway: ServerThread, github: tuple[GitHubEmulator, ServerThread]
) -> None:
    emulator, _ = github
    body = query(gh_gateway, MEMBERS, org="app-sre")
    members = body["data"]["github_org_members_v1"]
    assert len(members) == 250
    assert members[0] == {"login": "user000", "id": "1000"}
    assert members[-1] == {"login": "user249", "id": "1249"}
    assert emulator.total_calls("GET /orgs/app-sre/members") == 3


def test_second_members_query_is_a_cache_hit(
    gh_gateway: ServerThread, github: tuple[GitHubEmulator, ServerThread]
) -> None:
    emulator, _ = github
    query(gh_gateway, MEMBERS, org="app-sre")
    body = query(gh_gateway, MEMBERS, org="app-sre")
    assert len(body["data"]["github_org_members_v1"]) == 250
    assert body["extensions"]["provenance"][0]["outcome"] == "hit"
    assert emulator.total_calls("GET /orgs/app-sre/members") == 3


def test_empty_org_is_cached_as_a_result(
    gh_gateway: ServerThread, github: tuple[GitHubEmulator, ServerThread]
) -> None:
    emulator, _ = github
    for _ in range(3):
        assert query(gh_gateway, MEMBERS, org="empty-org")["data"]["github_org_members_v1"] == []
    assert emulator.total_calls("GET /orgs/empty-org/members") == 1


def test_unknown_org_is_bad_user_input_naming_the_configured_ones(
    gh_gateway: ServerThread,
) -> None:
    body = query(gh_gateway, MEMBERS, org="no-such-org")
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "no-such-org" in error["message"]
    assert "app-sre" in error["message"]


def test_collaborators_per_repo_with_a_missing_repo_as_a_not_found_item(
    gh_gateway: ServerThread,
) -> None:
    repos = ["app-sre/qontract-reconcile", "app-sre/gone", "empty-org/lonely"]
    body = query(gh_gateway, COLLABORATORS, repos=repos)
    first, missing, empty = body["data"]["github_repo_collaborators_v1"]
    assert first["name"] == "app-sre/qontract-reconcile"
    assert first["collaborators"] == [
        {
            "login": "alice",
            "id": "1",
            "role_name": "admin",
            "permissions": {"admin": True, "push": True, "pull": True},
        },
        {
            "login": "bob",
            "id": "2",
            "role_name": "read",
            "permissions": {"admin": False, "push": False, "pull": True},
        },
    ]
    assert missing is None
    assert empty == {"name": "empty-org/lonely", "collaborators": []}
    [error] = body["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert error["path"] == ["github_repo_collaborators_v1", 1]
    assert "app-sre/gone" in error["message"]


def test_repo_of_an_unconfigured_owner_or_malformed_is_bad_user_input_per_item(
    gh_gateway: ServerThread,
) -> None:
    repos = ["other/repo", "not-a-repo", "app-sre/qontract-reconcile"]
    body = query(gh_gateway, COLLABORATORS, repos=repos)
    items = body["data"]["github_repo_collaborators_v1"]
    assert items[:2] == [None, None]
    assert items[2]["name"] == "app-sre/qontract-reconcile"
    codes = {tuple(e["path"]): e["extensions"]["code"] for e in body["errors"]}
    assert codes == {
        ("github_repo_collaborators_v1", 0): "BAD_USER_INPUT",
        ("github_repo_collaborators_v1", 1): "BAD_USER_INPUT",
    }


def test_collaborators_are_cached_per_repo(
    gh_gateway: ServerThread, github: tuple[GitHubEmulator, ServerThread]
) -> None:
    emulator, _ = github
    query(gh_gateway, COLLABORATORS, repos=["app-sre/qontract-reconcile"])
    body = query(
        gh_gateway, COLLABORATORS, repos=["app-sre/qontract-reconcile", "empty-org/lonely"]
    )
    outcomes = [p["outcome"] for p in body["extensions"]["provenance"]]
    assert outcomes == ["hit", "miss"]
    assert emulator.total_calls("GET /repos/app-sre/qontract-reconcile/collaborators") == 1


def test_secondary_rate_limit_403_pauses_the_bucket_for_every_caller(
    gh_gateway: ServerThread, github: tuple[GitHubEmulator, ServerThread]
) -> None:
    emulator, _ = github
    emulator.fail(status=403, retry_after=120, path_prefix="/orgs/app-sre", body=SECONDARY_LIMIT)
    body = query(gh_gateway, MEMBERS, org="app-sre")
    assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_RATE_LIMITED"
    body = query(gh_gateway, COLLABORATORS, repos=["app-sre/qontract-reconcile"])
    assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_RATE_LIMITED"
    assert emulator.total_calls("GET /repos/") == 0, "the 403 paused the whole bucket"


def test_secondary_rate_limit_without_retry_after_still_pauses_the_bucket(
    gh_gateway: ServerThread, github: tuple[GitHubEmulator, ServerThread]
) -> None:
    emulator, _ = github
    emulator.fail(status=403, path_prefix="/orgs/app-sre", body=SECONDARY_LIMIT)
    body = query(gh_gateway, MEMBERS, org="app-sre")
    assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_RATE_LIMITED"
    assert emulator.total_calls("GET /orgs/app-sre/members") == 1


def test_last_token_of_the_hourly_quota_pauses_the_bucket_until_reset(
    gh_gateway: ServerThread, github: tuple[GitHubEmulator, ServerThread]
) -> None:
    emulator, _ = github
    emulator.state.quota = 1
    body = query(gh_gateway, COLLABORATORS, repos=["app-sre/qontract-reconcile"])
    assert len(body["data"]["github_repo_collaborators_v1"][0]["collaborators"]) == 2
    body = query(gh_gateway, MEMBERS, org="app-sre")
    assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_RATE_LIMITED"
    assert emulator.total_calls("GET /orgs/app-sre") == 0, "remaining 0 paused the bucket"


def test_plain_403_is_an_upstream_error_and_does_not_pause(
    gh_gateway: ServerThread, github: tuple[GitHubEmulator, ServerThread]
) -> None:
    emulator, _ = github
    emulator.fail(
        status=403, path_prefix="/orgs/app-sre", body={"message": "Must have admin rights"}
    )
    body = query(gh_gateway, MEMBERS, org="app-sre")
    assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_ERROR"
    assert query(gh_gateway, MEMBERS, org="empty-org")["data"]["github_org_members_v1"] == []


def test_token_never_appears_in_responses_or_redis_keys(
    gh_gateway: ServerThread, github: tuple[GitHubEmulator, ServerThread], redis_url: str
) -> None:
    emulator, _ = github
    query(gh_gateway, MEMBERS, org="app-sre")
    emulator.fail(status=401, path_prefix="/repos/app-sre", body={"message": "Bad credentials"})
    body = query(gh_gateway, COLLABORATORS, repos=["app-sre/qontract-reconcile", "app-sre/x"])
    assert TOKEN not in str(body)
    keys = redis.Redis.from_url(redis_url).keys("*")
    assert keys
    assert not any(TOKEN.encode() in k for k in keys)
