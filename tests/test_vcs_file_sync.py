"""`vcs_file_sync_v1` end to end: GraphQL mutation, in-process task worker, GitLab emulator."""

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from gateway.auth import mint_token
from gateway.events.disabled import DisabledPublisher
from gateway.events.redis_streams import decode_entry
from gateway.redis_keys import stream_keys
from gateway.registry import Sources
from gateway.runtime import Runtime
from gateway.tasks.kinds import TaskContext
from resolvers.gitlab.file_sync import BRANCH_PREFIX, TASK_KIND, FileSyncTask
from resolvers.systems import SYSTEMS
from tests.emulators.github import GitHubEmulator
from tests.emulators.gitlab import GitLabEmulator, GitLabProject
from tests.support.gateway import gateway_settings, graphql
from tests.support.server_thread import ServerThread

SECRET = "file-sync-test-secret-0123456789abcdef"
GITLAB_TOKEN = "glpat-file-sync-secret-789"
PROJECT = "service/app-interface"
USER_FILE = "data/users/alice.yml"
SUBMIT = """mutation Sync($url: String!, $title: String!, $ops: [VcsFileOperationInput_v1!]!,
                        $dry: Boolean!, $labels: [String!], $auto: Boolean!) {
  vcs_file_sync_v1(input: {dry_run: $dry, repo_url: $url, title: $title, target_branch: "master",
                           operations: $ops, description: "Removes users gone from LDAP",
                           labels: $labels, auto_merge: $auto}) { id status dry_run }
}"""
READ = """query Read($id: String!) {
  reconcile_task_v1(id: $id, wait_seconds: 30) {
    id status error
    typed_result {
      __typename status errors
      ... on VcsFileSyncResult_v1 {
        outcome mr_url mr_iid branch labels
        operations { action path commit_message content_bytes }
      }
    }
  }
}"""
DELETE_ALICE = [{"action": "delete", "path": USER_FILE, "commit_message": "delete alice"}]
TWO_COMMITS = [
    {"action": "delete", "path": USER_FILE, "commit_message": "delete alice"},
    {
        "action": "create",
        "path": "data/users/README.md",
        "content": "Users are deleted by ldap-users-api.\n" * 200,
        "commit_message": "explain",
    },
]


@pytest.fixture
def gitlab() -> Iterator[tuple[GitLabEmulator, ServerThread]]:
    emulator = GitLabEmulator()
    emulator.state.token = GITLAB_TOKEN
    emulator.state.add_project(PROJECT).files["master"] = {
        USER_FILE: "name: alice\n",
        "data/users/bob.yml": "name: bob\n",
    }
    with ServerThread(emulator.app) as server:
        yield emulator, server


@pytest.fixture
def github() -> Iterator[ServerThread]:
    with ServerThread(GitHubEmulator().app) as server:
        yield server


@pytest.fixture
def gateway(
    gateway_factory: Callable[..., ServerThread],
    gitlab: tuple[GitLabEmulator, ServerThread],
    github: ServerThread,
    monkeypatch: pytest.MonkeyPatch,
) -> ServerThread:
    """A gateway on the GitLab emulator (answers later than 2 s time out) and a GitHub one."""
    monkeypatch.setenv("QGW_TEST_GL_TOKEN", GITLAB_TOKEN)
    monkeypatch.setenv("QGW_TEST_GH_TOKEN", "ghp-unused")
    return gateway_factory(
        auth={"secret": SECRET},
        upstreams={
            "gitlab": [
                {
                    "name": "gitlab-internal",
                    "api_url": f"{gitlab[1].url}/api/v4",
                    "token": {"env": "QGW_TEST_GL_TOKEN"},
                    "timeout": 2.0,
                }
            ],
            "github": [
                {
                    "name": "app-sre",
                    "api_url": github.url,
                    "token": {"env": "QGW_TEST_GH_TOKEN"},
                }
            ],
        },
    )


def project(gitlab: tuple[GitLabEmulator, ServerThread]) -> GitLabProject:
    found = gitlab[0].state.project(PROJECT)
    assert found is not None
    return found


def submit(
    gateway: ServerThread,
    url: str,
    operations: list[dict[str, Any]],
    *,
    dry_run: bool,
    title: str = "[ldap-users] delete alice",
    labels: list[str] | None = None,
    auto_merge: bool = False,
) -> dict[str, Any]:
    scopes = ["reconcile:dry-run"] if dry_run else ["reconcile:apply"]
    token = mint_token(SECRET, "ldap-users-api", scopes, expires_days=1)
    variables = {
        "url": url,
        "title": title,
        "ops": operations,
        "dry": dry_run,
        "labels": labels,
        "auto": auto_merge,
    }
    return graphql(gateway, SUBMIT, token, **variables)


def result_of(gateway: ServerThread, task_id: str) -> dict[str, Any]:
    token = mint_token(SECRET, "ldap-users-api", ["reconcile:apply"], expires_days=1)
    read = graphql(gateway, READ, token, id=task_id)["data"]["reconcile_task_v1"]
    assert read["status"] in ("success", "failed"), read
    result: dict[str, Any] = read["typed_result"]
    return result


def sync(gateway: ServerThread, url: str, operations: list[dict[str, Any]], **options: Any) -> Any:
    submitted = submit(gateway, url, operations, **options)
    assert "errors" not in submitted, submitted
    return result_of(gateway, submitted["data"]["vcs_file_sync_v1"]["id"])


def repo_url(gitlab: tuple[GitLabEmulator, ServerThread]) -> str:
    return f"{gitlab[1].url}/{PROJECT}.git"


def test_dry_run_lists_the_operations_and_writes_nothing(
    gateway: ServerThread, gitlab: tuple[GitLabEmulator, ServerThread]
) -> None:
    result = sync(gateway, repo_url(gitlab), TWO_COMMITS, dry_run=True, auto_merge=True)
    assert result["__typename"] == "VcsFileSyncResult_v1"
    assert (result["status"], result["outcome"], result["mr_url"]) == (
        "success",
        "mr_would_be_created",
        None,
    )
    assert result["labels"] == ["bot/automerge"]
    assert result["operations"] == [
        {
            "action": "delete",
            "path": USER_FILE,
            "commit_message": "delete alice",
            "content_bytes": 0,
        },
        {
            "action": "create",
            "path": "data/users/README.md",
            "commit_message": "explain",
            "content_bytes": len(TWO_COMMITS[1]["content"]),
        },
    ]
    assert gitlab[0].total_calls("POST") == 0
    assert list(project(gitlab).files) == ["master"]


def test_real_run_makes_a_branch_one_commit_per_operation_and_the_labelled_mr(
    gateway: ServerThread,
    gitlab: tuple[GitLabEmulator, ServerThread],
    redis_url: str,
    namespace: str,
) -> None:
    result = sync(
        gateway,
        repo_url(gitlab),
        TWO_COMMITS,
        dry_run=False,
        labels=["ldap-users"],
        auto_merge=True,
    )
    assert (result["status"], result["outcome"], result["errors"]) == ("success", "mr_created", [])
    (mr,) = project(gitlab).merge_requests
    assert result["mr_url"] == mr["web_url"]
    assert result["mr_iid"] == mr["iid"]
    assert (mr["title"], mr["target_branch"], mr["state"]) == (
        "[ldap-users] delete alice",
        "master",
        "opened",
    )
    assert mr["labels"] == ["ldap-users", "bot/automerge"]
    assert mr["description"] == "Removes users gone from LDAP"
    assert mr["force_remove_source_branch"] is True
    assert mr["source_branch"] == result["branch"]
    commits = project(gitlab).commits
    assert [(c["branch"], c["message"]) for c in commits] == [
        (result["branch"], "delete alice"),
        (result["branch"], "explain"),
    ]
    branch_files = project(gitlab).files[result["branch"]]
    assert USER_FILE not in branch_files
    assert "data/users/README.md" in branch_files
    assert USER_FILE in project(gitlab).files["master"]
    assert branch_files["data/users/README.md"] == TWO_COMMITS[1]["content"], "over 4,096 chars"

    with redis.Redis.from_url(redis_url) as client:
        entries: Any = client.xrange(stream_keys(namespace).stream)
    events = [decode_entry(fields) for _, fields in entries]
    (created,) = [e for e in events if e.event_type == "vcs.file-sync"]
    assert created.payload["mr_url"] == mr["web_url"]
    assert created.payload["title"] == "[ldap-users] delete alice"
    assert GITLAB_TOKEN not in str(created.payload)


def test_an_open_mr_with_the_same_title_is_returned_not_made_again(
    gateway: ServerThread, gitlab: tuple[GitLabEmulator, ServerThread]
) -> None:
    first = sync(gateway, repo_url(gitlab), DELETE_ALICE, dry_run=False)
    again = sync(gateway, repo_url(gitlab), DELETE_ALICE, dry_run=False)
    dry = sync(gateway, repo_url(gitlab), DELETE_ALICE, dry_run=True)
    assert first["outcome"] == "mr_created"
    assert (again["outcome"], again["mr_url"]) == ("mr_exists", first["mr_url"])
    assert (dry["outcome"], dry["mr_url"]) == ("mr_exists", first["mr_url"])
    assert len(project(gitlab).merge_requests) == 1
    assert len(project(gitlab).commits) == 1
    project(gitlab).merge_requests[0]["state"] = "merged"
    after_merge = sync(gateway, repo_url(gitlab), DELETE_ALICE, dry_run=False)
    assert after_merge["outcome"] == "mr_created", "only an open MR counts"


def test_a_title_that_only_contains_the_open_mrs_title_is_another_mr(
    gateway: ServerThread, gitlab: tuple[GitLabEmulator, ServerThread]
) -> None:
    sync(gateway, repo_url(gitlab), DELETE_ALICE, dry_run=False, title="delete alice and bob")
    other = sync(gateway, repo_url(gitlab), DELETE_ALICE, dry_run=False, title="delete alice")
    assert other["outcome"] == "mr_created"
    assert len(project(gitlab).merge_requests) == 2


def test_a_failure_midway_removes_the_branch_and_opens_no_mr(
    gateway: ServerThread,
    gitlab: tuple[GitLabEmulator, ServerThread],
    redis_url: str,
    namespace: str,
) -> None:
    operations = [
        *DELETE_ALICE,
        {
            "action": "update",
            "path": "data/users/nobody.yml",
            "content": "x",
            "commit_message": "u",
        },
    ]
    result = sync(gateway, repo_url(gitlab), operations, dry_run=False)
    assert (result["status"], result["outcome"]) == ("failed", None)
    (error,) = result["errors"]
    assert "A file with this name doesn't exist" in error
    assert "update 'data/users/nobody.yml'" in error
    assert list(project(gitlab).files) == ["master"], "the run's branch is removed"
    assert project(gitlab).merge_requests == []
    assert len(project(gitlab).commits) == 1, "the first commit was made, on the removed branch"
    with redis.Redis.from_url(redis_url) as client:
        entries: Any = client.xrange(stream_keys(namespace).stream)
    types = [decode_entry(fields).event_type for _, fields in entries]
    assert types == ["vcs.file-sync.error"]


def test_a_missing_target_branch_fails_the_dry_run_and_the_real_run_without_a_branch(
    gateway: ServerThread, gitlab: tuple[GitLabEmulator, ServerThread]
) -> None:
    project(gitlab).files["main"] = project(gitlab).files.pop("master")
    dry = sync(gateway, repo_url(gitlab), DELETE_ALICE, dry_run=True)
    assert dry["status"] == "failed"
    assert "target branch 'master' does not exist" in dry["errors"][0]
    real = sync(gateway, repo_url(gitlab), DELETE_ALICE, dry_run=False)
    assert real["status"] == "failed"
    assert "Invalid reference name: master" in real["errors"][0]
    assert list(project(gitlab).files) == ["main"]


def test_a_merge_request_whose_answer_was_lost_is_found_and_its_branch_kept(
    gateway: ServerThread, gitlab: tuple[GitLabEmulator, ServerThread]
) -> None:
    gitlab[0].state.merge_request_answer_delay = 3.0
    result = sync(gateway, repo_url(gitlab), DELETE_ALICE, dry_run=False)
    (mr,) = project(gitlab).merge_requests
    assert (result["status"], result["outcome"], result["mr_url"]) == (
        "success",
        "mr_created",
        mr["web_url"],
    )
    assert mr["source_branch"] in project(gitlab).files, "the MR's branch is not removed"


def test_two_concurrent_calls_make_one_mr(
    gateway: ServerThread, gitlab: tuple[GitLabEmulator, ServerThread]
) -> None:
    emulator = gitlab[0]
    emulator.slow(1.0, times=1, path_prefix=f"/api/v4/projects/{PROJECT}/merge_requests")
    answers: list[dict[str, Any]] = []

    def call() -> None:
        answers.append(submit(gateway, repo_url(gitlab), DELETE_ALICE, dry_run=False))

    callers = [threading.Thread(target=call) for _ in range(2)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(timeout=30)
    task_ids = {answer["data"]["vcs_file_sync_v1"]["id"] for answer in answers}
    results = [result_of(gateway, task_id) for task_id in task_ids]
    assert len(answers) == 2
    assert len(task_ids) == 1, "the second call joined the running task"
    assert [r["outcome"] for r in results] == ["mr_created"]
    assert len(project(gitlab).merge_requests) == 1
    assert emulator.total_calls("POST /api/v4/projects/service%2Fapp-interface/repository/b") <= 1


def test_a_repository_on_an_unknown_host_is_refused_at_submission(
    gateway: ServerThread,
) -> None:
    body = submit(gateway, "https://gitlab.unknown.example/a/b", DELETE_ALICE, dry_run=True)
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "unknown repository host 'gitlab.unknown.example'" in error["message"]


def test_a_github_repository_is_refused(gateway: ServerThread) -> None:
    body = submit(gateway, "https://github.com/app-sre/repo", DELETE_ALICE, dry_run=True)
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "file-sync needs a GitLab repository" in error["message"]


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        ({"action": "delete", "path": "data/../../etc/passwd", "commit_message": "x"}, "'..'"),
        ({"action": "create", "path": "a.yml", "commit_message": "x"}, "needs the file's content"),
        (
            {"action": "delete", "path": "a.yml", "content": "x", "commit_message": "x"},
            "a delete takes no content",
        ),
        (
            {"action": "create", "path": "a.yml", "content": "é" * 270_000, "commit_message": "x"},
            "at most 524288 bytes",
        ),
        ({"action": "delete", "path": "a" * 1025, "commit_message": "x"}, "at most 1024"),
    ],
)
def test_bad_operations_are_refused_before_any_call(
    gateway: ServerThread,
    gitlab: tuple[GitLabEmulator, ServerThread],
    operation: dict[str, Any],
    expected: str,
) -> None:
    body = submit(gateway, repo_url(gitlab), [operation], dry_run=False)
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert expected in error["message"]
    assert gitlab[0].total_calls() == 0


def test_labels_with_commas_and_multiline_titles_are_refused(
    gateway: ServerThread, gitlab: tuple[GitLabEmulator, ServerThread]
) -> None:
    comma = submit(gateway, repo_url(gitlab), DELETE_ALICE, dry_run=True, labels=["a,b"])
    assert "no comma" in comma["errors"][0]["message"]
    title = submit(gateway, repo_url(gitlab), DELETE_ALICE, dry_run=True, title="a\nb")
    assert "one line" in title["errors"][0]["message"]


def test_the_dry_run_scope_cannot_open_an_mr(
    gateway: ServerThread, gitlab: tuple[GitLabEmulator, ServerThread]
) -> None:
    token = mint_token(SECRET, "ldap-users-api", ["reconcile:dry-run"], expires_days=1)
    variables = {
        "url": repo_url(gitlab),
        "title": "t",
        "ops": DELETE_ALICE,
        "dry": False,
        "labels": None,
        "auto": False,
    }
    body = graphql(gateway, SUBMIT, token, **variables)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert gitlab[0].total_calls() == 0


async def test_a_redelivered_run_replaces_the_branch_its_lost_run_left(
    gitlab: tuple[GitLabEmulator, ServerThread],
    redis_url: str,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker that died after the branch and a commit: the task's next attempt (same task
    id, so same branch) deletes that branch and makes the MR from a fresh one."""
    monkeypatch.setenv("QGW_TEST_GL_TOKEN", GITLAB_TOKEN)
    account = {
        "name": "gitlab-internal",
        "api_url": f"{gitlab[1].url}/api/v4",
        "token": {"env": "QGW_TEST_GL_TOKEN"},
    }
    runtime = Runtime.create(
        gateway_settings(redis_url, namespace, upstreams={"gitlab": [account]})
    )
    sources = Sources.create(runtime, SYSTEMS)
    task_id = "0b4e7a52-2f1c-4c43-9d0e-6f0d3c2f4a11"
    left = BRANCH_PREFIX + task_id
    project(gitlab).files[left] = {"half-done.yml": "left by the lost run\n"}
    payload = {
        "dry_run": False,
        "repo_url": repo_url(gitlab),
        "title": "[ldap-users] delete alice",
        "target_branch": "master",
        "operations": DELETE_ALICE,
    }
    try:
        context = TaskContext(task_id, TASK_KIND, False, None, "request-1", 2, runtime)
        result = await FileSyncTask(sources, DisabledPublisher()).task(payload, context)
    finally:
        await sources.aclose()
        await runtime.aclose()
    assert (result["status"], result["outcome"], result["branch"]) == (
        "success",
        "mr_created",
        left,
    )
    assert project(gitlab).files[left] == {"data/users/bob.yml": "name: bob\n"}, "a fresh branch"
    assert [c["branch"] for c in project(gitlab).commits] == [left]
    assert [mr["source_branch"] for mr in project(gitlab).merge_requests] == [left]
