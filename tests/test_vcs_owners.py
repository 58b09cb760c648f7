"""OWNERS approvers and reviewers through the gateway: aliases, parent inheritance, caching."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.emulators.github import GitHubEmulator
from tests.support.gateway import graphql
from tests.support.server_thread import ServerThread

TOKEN = "ghp-owners-token-789"
REPO_URL = "https://github.com/app-sre/qontract-reconcile"
OWNERS = """query Owners($url: String!, $path: String!, $ref: String!) {
  vcs_owners_v1(repo_url: $url, path: $path, ref: $ref) { repo_url path ref approvers reviewers }
}"""
ROOT_OWNERS = """
approvers:
  - root-approvers
  - carol
reviewers:
  - dave
"""
ALIASES = """
aliases:
  root-approvers:
    - alice
    - bob
  sig-reviewers:
    - erin
    - frank
"""
DOCS_OWNERS = """
approvers: [gina]
reviewers: [sig-reviewers]
"""
ISOLATED_OWNERS = """
options:
  no_parent_owners: true
approvers: [henry]
"""


@pytest.fixture
def github() -> Iterator[tuple[GitHubEmulator, ServerThread]]:
    emulator = GitHubEmulator()
    emulator.state.token = TOKEN
    emulator.state.files[("app-sre/qontract-reconcile", "master")] = {
        "OWNERS": ROOT_OWNERS,
        "OWNERS_ALIASES": ALIASES,
        "docs/OWNERS": DOCS_OWNERS,
        "secure/OWNERS": ISOLATED_OWNERS,
    }
    emulator.state.files[("app-sre/qontract-reconcile", "release")] = {"OWNERS": "approvers: [ivy]"}
    emulator.state.files[("app-sre/broken", "master")] = {"OWNERS": "approvers: [unclosed"}
    emulator.state.files[("app-sre/qontract-reconcile", "bare")] = {"README.md": "no owners"}
    with ServerThread(emulator.app) as server:
        yield emulator, server


@pytest.fixture
def owners_gateway(
    gateway_factory: Callable[..., ServerThread],
    github: tuple[GitHubEmulator, ServerThread],
    monkeypatch: pytest.MonkeyPatch,
) -> ServerThread:
    monkeypatch.setenv("QGW_TEST_GH_TOKEN", TOKEN)
    _, upstream = github
    account = {"name": "app-sre", "api_url": upstream.url, "token": {"env": "QGW_TEST_GH_TOKEN"}}
    return gateway_factory(upstreams={"github": [account]})


def owners(
    server: ServerThread, path: str = "/", ref: str = "master", url: str = REPO_URL
) -> dict[str, Any]:
    return graphql(server, OWNERS, url=url, path=path, ref=ref)


def test_root_owners_expand_aliases(owners_gateway: ServerThread) -> None:
    found = owners(owners_gateway)["data"]["vcs_owners_v1"]
    assert found == {
        "repo_url": REPO_URL,
        "path": "/",
        "ref": "master",
        "approvers": ["alice", "bob", "carol"],
        "reviewers": ["dave"],
    }


def test_nested_path_inherits_parent_owners(owners_gateway: ServerThread) -> None:
    found = owners(owners_gateway, path="/docs/guides/")["data"]["vcs_owners_v1"]
    assert found["approvers"] == ["alice", "bob", "carol", "gina"]
    assert found["reviewers"] == ["dave", "erin", "frank"]


def test_no_parent_owners_stops_inheritance(owners_gateway: ServerThread) -> None:
    found = owners(owners_gateway, path="/secure/keys")["data"]["vcs_owners_v1"]
    assert found["approvers"] == ["henry"]
    assert found["reviewers"] == []


def test_missing_owners_files_are_no_owners_not_errors(owners_gateway: ServerThread) -> None:
    body = owners(owners_gateway, ref="bare")
    assert "errors" not in body
    assert body["data"]["vcs_owners_v1"]["approvers"] == []


def test_missing_ref_or_repository_is_not_found_not_empty_owners(
    owners_gateway: ServerThread,
) -> None:
    for url, ref in (
        (REPO_URL, "no-such-branch"),
        (REPO_URL.replace("qontract-reconcile", "no-such-repo"), "master"),
    ):
        body = owners(owners_gateway, ref=ref, url=url)
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_ref_selects_the_owners_files(owners_gateway: ServerThread) -> None:
    found = owners(owners_gateway, ref="release")["data"]["vcs_owners_v1"]
    assert found["approvers"] == ["ivy"]


def test_repeat_reads_every_file_once_including_absent_ones(
    owners_gateway: ServerThread, github: tuple[GitHubEmulator, ServerThread]
) -> None:
    emulator, _ = github
    owners(owners_gateway, path="/docs/guides")
    body = owners(owners_gateway, path="/docs/guides")
    assert {p["outcome"] for p in body["extensions"]["provenance"]} == {"hit"}
    contents = "GET /repos/app-sre/qontract-reconcile/contents/"
    assert emulator.total_calls(contents) == 4, "OWNERS in /, docs, docs/guides and the aliases"
    assert emulator.total_calls(contents + "docs/guides/OWNERS") == 1


def test_parent_files_are_shared_between_paths(
    owners_gateway: ServerThread, github: tuple[GitHubEmulator, ServerThread]
) -> None:
    emulator, _ = github
    owners(owners_gateway, path="/docs")
    owners(owners_gateway, path="/secure")
    assert emulator.calls["GET /repos/app-sre/qontract-reconcile/contents/OWNERS"] == 1


def test_invalid_owners_yaml_is_an_upstream_error(owners_gateway: ServerThread) -> None:
    body = owners(owners_gateway, url="https://github.com/app-sre/broken.git")
    assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_ERROR"
    assert "app-sre/broken" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    ("url", "word"),
    [("https://github.com/other-org/repo", "other-org"), ("not a url", "not a url")],
)
def test_unknown_org_or_bad_url_is_bad_user_input(
    owners_gateway: ServerThread, url: str, word: str
) -> None:
    body = owners(owners_gateway, url=url)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert word in body["errors"][0]["message"]
