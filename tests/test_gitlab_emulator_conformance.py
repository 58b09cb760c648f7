"""The GitLab emulator as python-gitlab, an independent client, sees it: GitLab REST v4 shapes."""

from collections.abc import Iterator

import gitlab
import pytest
from gitlab.exceptions import (
    GitlabAuthenticationError,
    GitlabCreateError,
    GitlabDeleteError,
    GitlabGetError,
)

from tests.emulators.gitlab import GitLabEmulator
from tests.support.server_thread import ServerThread

TOKEN = "glpat-conformance-token"
OWNERS = "approvers:\n  - alice\nreviewers:\n  - bob\n"
NOT_UTF8 = b"\x89PNG\r\n\x1a\n\x00\xff"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[GitLabEmulator, str]]:
    emulator = GitLabEmulator()
    emulator.state.token = TOKEN
    project = emulator.state.add_project("service/app-interface")
    project.files["master"] = {"OWNERS": OWNERS, "docs/img/logo.png": NOT_UTF8}
    project.files["release/1.0"] = {"OWNERS": "approvers: [carol]\n"}
    for index in range(45):
        project.add_member(f"user{index:02d}", 100 + index)
    emulator.state.add_project("service/sub-group/other")
    with ServerThread(emulator.app) as server:
        yield emulator, server.url


@pytest.fixture
def emulator(served: tuple[GitLabEmulator, str]) -> GitLabEmulator:
    served[0].reset()
    return served[0]


@pytest.fixture
def gl(served: tuple[GitLabEmulator, str]) -> gitlab.Gitlab:
    return gitlab.Gitlab(served[1], private_token=TOKEN)


def test_project_by_encoded_full_path_and_by_numeric_id(
    gl: gitlab.Gitlab, emulator: GitLabEmulator
) -> None:
    by_path = gl.projects.get("service/app-interface")
    by_id = gl.projects.get(by_path.id)
    assert by_path.path_with_namespace == by_id.path_with_namespace == "service/app-interface"
    assert by_path.default_branch == "master"
    assert emulator.raw_paths["/api/v4/projects/service%2Fapp-interface"] == 1
    assert emulator.raw_paths[f"/api/v4/projects/{by_path.id}"] == 1


def test_subgroup_project_path_is_one_encoded_segment(gl: gitlab.Gitlab) -> None:
    project = gl.projects.get("service/sub-group/other")
    assert project.path_with_namespace == "service/sub-group/other"


def test_file_json_carries_base64_content_that_decodes_to_the_bytes(gl: gitlab.Gitlab) -> None:
    project = gl.projects.get("service/app-interface", lazy=True)
    owners = project.files.get(file_path="OWNERS", ref="master")
    assert owners.encoding == "base64"
    assert owners.decode() == OWNERS.encode()
    image = project.files.get(file_path="docs/img/logo.png", ref="master")
    assert image.decode() == NOT_UTF8
    assert image.size == len(NOT_UTF8)


def test_file_at_a_ref_with_a_slash_and_by_commit_id(gl: gitlab.Gitlab) -> None:
    project = gl.projects.get("service/app-interface", lazy=True)
    release = project.files.get(file_path="OWNERS", ref="release/1.0")
    assert release.decode() == b"approvers: [carol]\n"
    commit = project.commits.get("release/1.0")
    by_commit = project.files.get(file_path="OWNERS", ref=commit.id)
    assert by_commit.decode() == b"approvers: [carol]\n"


def test_raw_file_is_the_bytes_with_the_file_path_encoded(
    gl: gitlab.Gitlab, emulator: GitLabEmulator
) -> None:
    project = gl.projects.get("service/app-interface", lazy=True)
    assert project.files.raw(file_path="docs/img/logo.png", ref="master") == NOT_UTF8
    raw = "/api/v4/projects/service%2Fapp-interface/repository/files/docs%2Fimg%2Flogo.png/raw"
    assert emulator.raw_paths[raw] == 1


def test_members_list_follows_pagination_through_every_page(
    gl: gitlab.Gitlab, emulator: GitLabEmulator
) -> None:
    project = gl.projects.get("service/app-interface", lazy=True)
    members = project.members_all.list(get_all=True, per_page=20)
    assert [m.username for m in members] == [f"user{i:02d}" for i in range(45)]
    assert emulator.total_calls("GET /api/v4/projects/service/app-interface/members/all") == 3
    pages = project.members_all.list(per_page=20, iterator=True)
    assert (pages.current_page, pages.next_page, pages.total_pages, pages.total) == (1, 2, 3, 45)
    assert len(list(pages)) == 45


def test_missing_file_ref_or_project_raises_get_error_with_gitlab_messages(
    gl: gitlab.Gitlab,
) -> None:
    project = gl.projects.get("service/app-interface", lazy=True)
    with pytest.raises(GitlabGetError) as missing_file:
        project.files.get(file_path="nope/OWNERS", ref="master")
    assert missing_file.value.response_code == 404
    assert missing_file.value.error_message == "404 File Not Found"
    with pytest.raises(GitlabGetError) as missing_commit:
        project.commits.get("no-such-branch")
    assert missing_commit.value.error_message == "404 Commit Not Found"
    with pytest.raises(GitlabGetError) as missing_project:
        gl.projects.get("service/none")
    assert missing_project.value.error_message == "404 Project Not Found"


def test_wrong_token_raises_authentication_error(served: tuple[GitLabEmulator, str]) -> None:
    wrong = gitlab.Gitlab(served[1], private_token="glpat-wrong")
    with pytest.raises(GitlabAuthenticationError) as refused:
        wrong.projects.get("service/app-interface")
    assert refused.value.response_code == 401
    assert refused.value.error_message == "401 Unauthorized"


def test_oauth_bearer_token_is_accepted(served: tuple[GitLabEmulator, str]) -> None:
    bearer = gitlab.Gitlab(served[1], oauth_token=TOKEN)
    assert bearer.projects.get("service/app-interface").id == 1


def test_429_is_retried_after_retry_after_then_succeeds(
    gl: gitlab.Gitlab, emulator: GitLabEmulator
) -> None:
    emulator.throttle(times=1, retry_after=1)
    project = gl.projects.get("service/app-interface", max_retries=2)
    assert project.id == 1
    assert emulator.total_calls("GET /api/v4/projects/service/app-interface") == 2


def test_429_beyond_the_retry_bound_raises_with_the_status(
    gl: gitlab.Gitlab, emulator: GitLabEmulator
) -> None:
    emulator.throttle(times=5, retry_after=1)
    with pytest.raises(GitlabGetError) as limited:
        gl.projects.get("service/app-interface", max_retries=1)
    assert limited.value.response_code == 429
    assert emulator.total_calls("GET /api/v4/projects/service/app-interface") == 2


def test_branch_commit_with_actions_and_merge_request_round_trip(
    gl: gitlab.Gitlab, emulator: GitLabEmulator
) -> None:
    emulated = emulator.state.project("service/sub-group/other")
    assert emulated is not None
    emulated.files["master"] = {"a.yml": "a: 1\n"}
    project = gl.projects.get("service/sub-group/other", lazy=True)
    branch = project.branches.create({"branch": "sync-1", "ref": "master"})
    assert branch.name == "sync-1"
    commit = project.commits.create(
        {
            "branch": "sync-1",
            "commit_message": "add b, change a",
            "actions": [
                {"action": "create", "file_path": "b.yml", "content": "b: 2\n"},
                {"action": "update", "file_path": "a.yml", "content": "a: 3\n"},
            ],
        }
    )
    assert commit.title == "add b, change a"
    assert project.files.raw(file_path="b.yml", ref="sync-1") == b"b: 2\n"
    assert project.files.raw(file_path="a.yml", ref=commit.id) == b"a: 3\n"
    assert project.files.raw(file_path="a.yml", ref="master") == b"a: 1\n"
    mr = project.mergerequests.create(
        {
            "source_branch": "sync-1",
            "target_branch": "master",
            "title": "Sync a and b",
            "labels": ["bot/automerge", "ldap-users"],
            "remove_source_branch": True,
        }
    )
    assert (mr.iid, mr.state, mr.labels) == (1, "opened", ["bot/automerge", "ldap-users"])
    assert mr.web_url.endswith("/service/sub-group/other/-/merge_requests/1")
    found = project.mergerequests.list(state="opened", search="sync a", get_all=True)
    assert [m.title for m in found] == ["Sync a and b"]
    assert project.mergerequests.list(state="merged", search="sync a", get_all=True) == []
    project.branches.delete("sync-1")
    with pytest.raises(GitlabGetError) as gone:
        project.branches.get("sync-1")
    assert gone.value.error_message == "404 Branch Not Found"
    assert [c["branch"] for c in emulated.commits] == ["sync-1"]


def test_refused_writes_raise_create_and_delete_errors_with_gitlab_messages(
    gl: gitlab.Gitlab,
) -> None:
    project = gl.projects.get("service/app-interface", lazy=True)
    with pytest.raises(GitlabCreateError) as taken:
        project.branches.create({"branch": "master", "ref": "master"})
    assert (taken.value.response_code, taken.value.error_message) == (400, "Branch already exists")
    with pytest.raises(GitlabCreateError) as unknown_ref:
        project.branches.create({"branch": "new", "ref": "no-such-ref"})
    assert unknown_ref.value.error_message == "Invalid reference name: no-such-ref"
    with pytest.raises(GitlabCreateError) as missing:
        project.commits.create(
            {
                "branch": "master",
                "commit_message": "drop",
                "actions": [{"action": "delete", "file_path": "nope.yml"}],
            }
        )
    assert missing.value.error_message == "A file with this name doesn't exist"
    with pytest.raises(GitlabCreateError) as exists:
        project.commits.create(
            {
                "branch": "master",
                "commit_message": "again",
                "actions": [{"action": "create", "file_path": "OWNERS", "content": "x"}],
            }
        )
    assert exists.value.error_message == "A file with this name already exists"
    with pytest.raises(GitlabDeleteError) as no_branch:
        project.branches.delete("no-such-branch")
    assert no_branch.value.response_code == 404
