"""`vcs_owners_v1` and `vcs_file_v1` through the gateway, on GitHub or GitLab by the URL's host."""

from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import pytest

from tests.emulators.base import UpstreamEmulator
from tests.emulators.github import GitHubEmulator
from tests.emulators.gitlab import GitLabEmulator
from tests.support.gateway import graphql
from tests.support.server_thread import ServerThread

GITLAB_TOKEN = "glpat-vcs-secret-456"
GITHUB_TOKEN = "ghp-vcs-secret-654"
PROJECT = "service/app-interface"
OWNERS = """query Owners($url: String!, $path: String!, $ref: String!) {
  vcs_owners_v1(repo_url: $url, path: $path, ref: $ref) { provider approvers reviewers }
}"""
FILE = """query File($url: String!, $path: String!, $ref: String!) {
  vcs_file_v1(repo_url: $url, path: $path, ref: $ref) { provider path ref text }
}"""


@pytest.fixture(scope="module")
def gitlab() -> Iterator[tuple[GitLabEmulator, ServerThread]]:
    emulator = GitLabEmulator()
    emulator.state.token = GITLAB_TOKEN
    emulator.state.add_project(PROJECT).files["master"] = {
        "OWNERS": "approvers: [root-approvers]\nreviewers: [dave]\n",
        "OWNERS_ALIASES": "aliases:\n  root-approvers: [alice, bob]\n",
        "docs/OWNERS": "approvers: [gina]\nreviewers: [erin]\n",
        "data/app.yml": "name: app\n",
    }
    with ServerThread(emulator.app) as server:
        yield emulator, server


@pytest.fixture(scope="module")
def github() -> Iterator[tuple[GitHubEmulator, ServerThread]]:
    emulator = GitHubEmulator()
    emulator.state.token = GITHUB_TOKEN
    emulator.state.files[("app-sre/repo", "main")] = {
        "OWNERS": "approvers: [carol]\nreviewers: [frank]\n",
        "README.md": "hello\n",
    }
    with ServerThread(emulator.app) as server:
        yield emulator, server


@pytest.fixture
def server(
    gateway_factory: Callable[..., ServerThread],
    gitlab: tuple[GitLabEmulator, ServerThread],
    github: tuple[GitHubEmulator, ServerThread],
    monkeypatch: pytest.MonkeyPatch,
) -> ServerThread:
    gitlab[0].reset()
    github[0].reset()
    monkeypatch.setenv("QGW_TEST_GL_TOKEN", GITLAB_TOKEN)
    monkeypatch.setenv("QGW_TEST_GH_TOKEN", GITHUB_TOKEN)
    return gateway_factory(
        upstreams={
            "gitlab": [
                {
                    "name": "gitlab-internal",
                    "api_url": f"{gitlab[1].url}/api/v4",
                    "token": {"env": "QGW_TEST_GL_TOKEN"},
                }
            ],
            "github": [
                {"name": "app-sre", "api_url": github[1].url, "token": {"env": "QGW_TEST_GH_TOKEN"}}
            ],
        }
    )


def gitlab_url(gitlab: tuple[GitLabEmulator, ServerThread]) -> str:
    """The web URL of the project on the emulated instance (its host is the account's)."""
    return f"{gitlab[1].url}/{PROJECT}.git"


def query(server: ServerThread, document: str, **variables: Any) -> dict[str, Any]:
    return graphql(server, document, **variables)


def test_owners_of_a_gitlab_url_come_from_gitlab_with_approvers_and_reviewers(
    server: ServerThread, gitlab: tuple[GitLabEmulator, ServerThread]
) -> None:
    body = query(server, OWNERS, url=gitlab_url(gitlab), path="docs/guide", ref="master")
    assert body["data"]["vcs_owners_v1"] == {
        "provider": "gitlab",
        "approvers": ["alice", "bob", "gina"],
        "reviewers": ["dave", "erin"],
    }


def test_owners_of_a_github_url_come_from_github(
    server: ServerThread, gitlab: tuple[GitLabEmulator, ServerThread]
) -> None:
    url = "https://github.com/app-sre/repo"
    body = query(server, OWNERS, url=url, path="/", ref="main")
    assert body["data"]["vcs_owners_v1"] == {
        "provider": "github",
        "approvers": ["carol"],
        "reviewers": ["frank"],
    }
    assert gitlab[0].total_calls() == 0


def test_unknown_host_is_bad_user_input_naming_the_known_hosts(
    server: ServerThread, gitlab: tuple[GitLabEmulator, ServerThread]
) -> None:
    body = query(server, OWNERS, url="https://gitlab.example.org/a/b", path="/", ref="master")
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "gitlab.example.org" in error["message"]
    assert "github.com" in error["message"]
    assert gitlab[1].url.removeprefix("http://") in error["message"]


def test_a_gitlab_file_is_read_and_then_served_from_the_cache(
    server: ServerThread, gitlab: tuple[GitLabEmulator, ServerThread]
) -> None:
    variables = {"url": gitlab_url(gitlab), "path": "/data//app.yml", "ref": "master"}
    first = query(server, FILE, **variables)["data"]["vcs_file_v1"]
    assert first == {
        "provider": "gitlab",
        "path": "/data//app.yml",
        "ref": "master",
        "text": "name: app\n",
    }
    calls = gitlab[0].total_calls()
    assert query(server, FILE, **variables)["data"]["vcs_file_v1"] == first
    assert gitlab[0].total_calls() == calls


FRESH_FILE = """query File($url: String!, $path: String!, $ref: String!) {
  vcs_file_v1(repo_url: $url, path: $path, ref: $ref, fresh: true) { text }
}"""


def assert_fresh_reads(
    server: ServerThread,
    emulator: UpstreamEmulator,
    files: MutableMapping[str, Any],
    url: str,
    ref: str,
) -> None:
    """A cached file changes upstream: plain reads keep the cached text, every fresh read
    reaches the upstream and caches what it read."""
    path = "data/fresh.yml"
    files[path] = "v1\n"
    try:
        read = {"url": url, "path": path, "ref": ref}
        assert query(server, FILE, **read)["data"]["vcs_file_v1"]["text"] == "v1\n"
        files[path] = "v2\n"
        assert query(server, FILE, **read)["data"]["vcs_file_v1"]["text"] == "v1\n"
        calls = emulator.total_calls()
        for _ in range(2):
            assert query(server, FRESH_FILE, **read)["data"]["vcs_file_v1"]["text"] == "v2\n"
        assert emulator.total_calls() == calls + 2, "a fresh answer is never reused"
        assert query(server, FILE, **read)["data"]["vcs_file_v1"]["text"] == "v2\n"
    finally:
        del files[path]


def test_a_fresh_gitlab_read_passes_the_cache(
    server: ServerThread, gitlab: tuple[GitLabEmulator, ServerThread]
) -> None:
    files = gitlab[0].state.projects[0].files["master"]
    assert_fresh_reads(server, gitlab[0], files, gitlab_url(gitlab), "master")


def test_a_fresh_github_read_passes_the_cache(
    server: ServerThread, github: tuple[GitHubEmulator, ServerThread]
) -> None:
    files = github[0].state.files[("app-sre/repo", "main")]
    assert_fresh_reads(server, github[0], files, "https://github.com/app-sre/repo", "main")


def test_a_github_file_is_read_and_then_served_from_the_cache(
    server: ServerThread, github: tuple[GitHubEmulator, ServerThread]
) -> None:
    variables = {"url": "https://github.com/app-sre/repo", "path": "README.md", "ref": "main"}
    first = query(server, FILE, **variables)["data"]["vcs_file_v1"]
    assert (first["provider"], first["text"]) == ("github", "hello\n")
    calls = github[0].total_calls()
    query(server, FILE, **variables)
    assert github[0].total_calls() == calls


@pytest.mark.parametrize("provider", ["gitlab", "github"])
def test_a_missing_file_is_not_found(
    server: ServerThread, gitlab: tuple[GitLabEmulator, ServerThread], provider: str
) -> None:
    url = gitlab_url(gitlab) if provider == "gitlab" else "https://github.com/app-sre/repo"
    body = query(server, FILE, url=url, path="nope.txt", ref="master")
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert "nope.txt" in body["errors"][0]["message"]


@pytest.mark.parametrize("provider", ["gitlab", "github"])
def test_dot_dot_segments_are_refused_before_any_request(
    server: ServerThread,
    gitlab: tuple[GitLabEmulator, ServerThread],
    github: tuple[GitHubEmulator, ServerThread],
    provider: str,
) -> None:
    url = gitlab_url(gitlab) if provider == "gitlab" else "https://github.com/app-sre/repo"
    body = query(server, FILE, url=url, path="docs/../../etc/passwd", ref="master")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert gitlab[0].total_calls() == 0
    assert github[0].total_calls() == 0


def test_the_gitlab_token_never_reaches_a_caller(
    server: ServerThread, gitlab: tuple[GitLabEmulator, ServerThread]
) -> None:
    gitlab[0].state.token = "rotated"
    try:
        body = query(server, FILE, url=gitlab_url(gitlab), path="data/app.yml", ref="master")
    finally:
        gitlab[0].state.token = GITLAB_TOKEN
    assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_ERROR"
    assert GITLAB_TOKEN not in str(body)
