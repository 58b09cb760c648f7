"""`cache_invalidate_v1`: only admins may drop cached upstream data; the next query refetches."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gateway.auth import mint_token
from tests.emulators.github import GitHubEmulator
from tests.support.gateway import graphql
from tests.support.server_thread import ServerThread

SECRET = "test-secret-not-for-production-0123456789"
TOKEN = "ghp-invalidate-token-000"
MEMBERS = '{ github_org_members_v1(org: "app-sre") { login } }'
INVALIDATE = """mutation Invalidate($system: String!, $account: String!, $data_type: String) {
  cache_invalidate_v1(system: $system, account: $account, data_type: $data_type)
}"""


@pytest.fixture
def github_server() -> Iterator[tuple[GitHubEmulator, ServerThread]]:
    emulator = GitHubEmulator()
    emulator.state.token = TOKEN
    emulator.state.add_member("app-sre", "alice", 1)
    with ServerThread(emulator.app) as server:
        yield emulator, server


@pytest.fixture
def github(github_server: tuple[GitHubEmulator, ServerThread]) -> GitHubEmulator:
    return github_server[0]


@pytest.fixture
def secured(
    gateway_factory: Callable[..., ServerThread],
    github_server: tuple[GitHubEmulator, ServerThread],
    monkeypatch: pytest.MonkeyPatch,
) -> ServerThread:
    monkeypatch.setenv("QGW_TEST_GH_TOKEN", TOKEN)
    url = github_server[1].url
    account = {"name": "app-sre", "api_url": url, "token": {"env": "QGW_TEST_GH_TOKEN"}}
    return gateway_factory(auth={"secret": SECRET}, upstreams={"github": [account]})


def post(server: ServerThread, scopes: list[str], document: str, **variables: Any) -> Any:
    token = mint_token(SECRET, "tester", scopes, expires_days=1)
    return graphql(server, document, token, **variables)


def test_read_scope_cannot_invalidate(secured: ServerThread) -> None:
    body = post(secured, ["read"], INVALIDATE, system="github", account="app-sre")
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize("data_type", [None, "org_members"])
def test_admin_invalidation_makes_the_next_query_a_miss(
    secured: ServerThread, github: GitHubEmulator, data_type: str | None
) -> None:
    post(secured, ["read"], MEMBERS)
    assert post(secured, ["read"], MEMBERS)["extensions"]["provenance"][0]["outcome"] == "hit"
    body = post(
        secured, ["admin"], INVALIDATE, system="github", account="app-sre", data_type=data_type
    )
    assert body["data"]["cache_invalidate_v1"] is True
    body = post(secured, ["read"], MEMBERS)
    assert body["extensions"]["provenance"][0]["outcome"] == "miss"
    assert github.total_calls("GET /orgs/app-sre/members") == 2


def test_invalidating_another_data_type_keeps_the_entry(
    secured: ServerThread, github: GitHubEmulator
) -> None:
    post(secured, ["read"], MEMBERS)
    post(secured, ["admin"], INVALIDATE, system="github", account="app-sre", data_type="owners")
    assert post(secured, ["read"], MEMBERS)["extensions"]["provenance"][0]["outcome"] == "hit"
    assert github.total_calls("GET /orgs/app-sre/members") == 1


@pytest.mark.parametrize(
    ("system", "account", "word"),
    [("gitlab", "app-sre", "gitlab"), ("github", "someone-else", "someone-else")],
)
def test_unknown_system_or_account_is_bad_user_input(
    secured: ServerThread, system: str, account: str, word: str
) -> None:
    body = post(secured, ["admin"], INVALIDATE, system=system, account=account)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert word in body["errors"][0]["message"]
