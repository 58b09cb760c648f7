"""ldap-users-api end to end: the CLI against the qontract-server stand-in, a gateway federating
it with a real slapd (STARTTLS) as LDAP and the GitLab emulator, all over loopback."""

import subprocess
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from tests.client.conftest import run_cli
from tests.emulators.gitlab import GitLabEmulator, GitLabProject
from tests.emulators.qontract_bundle import BUNDLE_PATH, load_bundle_dict, ref
from tests.emulators.qontract_server_standin import QontractServerStandin
from tests.ldap.conftest import PASSWORD_VARIABLE, slapd  # noqa: F401 (the session slapd)
from tests.ldap.test_ldap_users_graphql import ldap_upstream
from tests.support.ldap_server import EMPTY_BASE_DN, PrivateSlapd
from tests.support.server_thread import ServerThread

COMMAND = "ldap-users-api"
GITLAB_TOKEN = "glpat-ldap-users-secret-321"
PROJECT = "service/app-interface"
INFRA = "app-sre/infra"
GROUP_VARS = "ansible/hosts/group_vars/all"
GROUP_VARS_TEXT = """\
---
# managed by hand and by ldap-users-api
bastion_users:
  - name: alice  # on call
    key: ssh-ed25519 AAAA alice
  - name: erin
    key: ssh-ed25519 AAAA erin
deleted_users:
  - mallory
"""
IN_LDAP = ("alice", "bob", "carol", "dave")
USER_SCHEMA = "/access/user-1.yml"
REQUEST_SCHEMA = "/app-interface/credentials-request-1.yml"
GABI_SCHEMA = "/app-sre/gabi-instance-1.yml"
SCHEDULE_SCHEMA = "/app-sre/schedule-1.yml"
GABI_FILE = "data/gabi/gabi-db.yml"
SCHEDULE_FILE = "data/schedules/sre.yml"
SCHEDULE_TEXT = """\
schedule:
- start: '2030-01-01 00:00'
  end: '2030-01-08 00:00'
  users:
  - $ref: /access/users/erin.yml
  - $ref: /access/users/bob.yml
"""
GABI_TEXT = """\
---
$schema: /app-sre/gabi-instance-1.yml
name: gabi-db
users:
# readers
- $ref: /access/users/alice.yml
- $ref: /access/users/erin.yml
"""
TITLE = "[create_delete_user_mr] delete user erin"
NO_AUTO_MERGE = '{"ldap-users-api-allow-auto-merge-mrs": false}'


def user_file(name: str) -> str:
    return f"/access/users/{name}.yml"


def bundle(gone: tuple[str, ...], unanswerable: tuple[str, ...] = ()) -> dict[str, Any]:
    """The recorded bundle's schema with only: the integration, users in LDAP, users `gone`
    from it, users whose names LDAP cannot be asked about, and a credentials request of the
    first gone user."""
    base = load_bundle_dict(BUNDLE_PATH)
    data: dict[str, Any] = {
        "/integrations/ldap-users-api.yml": {
            "$schema": "/app-sre/integration-1.yml",
            "name": COMMAND,
            "description": "ldap-users through the qontract-gateway",
            "labels": {},
            "schemas": [USER_SCHEMA, REQUEST_SCHEMA, GABI_SCHEMA, SCHEDULE_SCHEMA],
        }
    }
    for name in (*IN_LDAP, *gone, *unanswerable):
        data[user_file(name)] = {
            "$schema": USER_SCHEMA,
            "labels": {},
            "name": name.title(),
            "org_username": name,
            "github_username": f"{name}-gh",
        }
    data["/app-interface/requests/erin-creds.yml"] = {
        "$schema": REQUEST_SCHEMA,
        "labels": {},
        "name": "erin-creds",
        "user": ref(user_file(gone[0])),
        "credentials": "some-credentials",
    }
    data["/gabi/gabi-db.yml"] = {
        "$schema": GABI_SCHEMA,
        "labels": {},
        "name": "gabi-db",
        "users": [ref(user_file("alice")), ref(user_file(gone[0]))],
    }
    data["/schedules/sre.yml"] = {
        "$schema": SCHEDULE_SCHEMA,
        "labels": {},
        "name": "sre",
        "schedule": [
            {
                "start": "2030-01-01 00:00",
                "end": "2030-01-08 00:00",
                "users": [ref(user_file(gone[0]))],
            }
        ],
    }
    return {**base, "data": data}


@pytest.fixture
def gitlab() -> Iterator[tuple[GitLabEmulator, ServerThread]]:
    emulator = GitLabEmulator()
    emulator.state.token = GITLAB_TOKEN
    files: dict[str, str | bytes] = {
        f"data{user_file(name)}": f"org_username: {name}\n" for name in (*IN_LDAP, "erin")
    }
    files["data/app-interface/requests/erin-creds.yml"] = "name: erin-creds\n"
    files[GABI_FILE] = GABI_TEXT
    files[SCHEDULE_FILE] = SCHEDULE_TEXT
    emulator.state.add_project(PROJECT).files["master"] = files
    emulator.state.add_project(INFRA).files["master"] = {GROUP_VARS: GROUP_VARS_TEXT}
    with ServerThread(emulator.app) as server:
        yield emulator, server


def project(gitlab: tuple[GitLabEmulator, ServerThread]) -> GitLabProject:
    found = gitlab[0].state.project(PROJECT)
    assert found is not None
    return found


Start = Callable[..., tuple[ServerThread, QontractServerStandin]]


@pytest.fixture
def start(
    gateway_factory: Callable[..., ServerThread],
    gitlab: tuple[GitLabEmulator, ServerThread],
    slapd: PrivateSlapd,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Start]:
    """`start(gone=("erin",), **ldap_account)`: the stand-in with those users gone from LDAP
    and a gateway federating it, with the LDAP account `main` and the GitLab emulator."""
    standins: list[QontractServerStandin] = []
    monkeypatch.setenv(PASSWORD_VARIABLE, slapd.bind_password)
    monkeypatch.setenv("QGW_TEST_GL_TOKEN", GITLAB_TOKEN)

    def begin(
        gone: tuple[str, ...] = ("erin",), unanswerable: tuple[str, ...] = (), **ldap: Any
    ) -> tuple[ServerThread, QontractServerStandin]:
        standin = QontractServerStandin(bundle(gone, unanswerable)).start()
        standins.append(standin)
        upstreams = {
            "qontract_server": {
                "url": standin.url,
                "poll_interval": 0.3,
                "unknown_sha_wait": 0.3,
            },
            "gitlab": [
                {
                    "name": "gitlab-internal",
                    "api_url": f"{gitlab[1].url}/api/v4",
                    "token": {"env": "QGW_TEST_GL_TOKEN"},
                }
            ],
            **ldap_upstream(slapd, **ldap),
        }
        return gateway_factory(upstreams=upstreams), standin

    yield begin
    for standin in standins:
        standin.stop()


def cli(
    gateway: ServerThread,
    gitlab: tuple[GitLabEmulator, ServerThread],
    *args: str,
    options: Sequence[str] = (),
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """Run the integration (after the global `args`, with its own `options`) against
    `gateway`, which federates app-interface; `env` adds QONTRACT_RECONCILE_API_<name>."""
    return run_cli(
        *args,
        COMMAND,
        "--ldap-instance",
        "main",
        "--app-interface-repo-url",
        f"{gitlab[1].url}/{PROJECT}",
        *options,
        env={
            "QONTRACT_RECONCILE_API_GATEWAY__URL": f"{gateway.url}/graphql",
            **{f"QONTRACT_RECONCILE_API_{name}": value for name, value in env.items()},
        },
    )


def test_dry_run_reports_the_user_gone_from_ldap_and_opens_nothing(
    start: Start,
    gitlab: tuple[GitLabEmulator, ServerThread],
    slapd: PrivateSlapd,  # noqa: F811
) -> None:
    gateway, _ = start()
    searched = len(slapd.searches())
    done = cli(gateway, gitlab)
    assert done.returncode == 0, done.stderr
    assert "1 of 5 users are gone from LDAP" in done.stdout
    would = (
        f"[dry-run] erin: would open {TITLE!r}: delete data/access/users/erin.yml, "
        f"delete data/app-interface/requests/erin-creds.yml, update {GABI_FILE}, "
        f"update {SCHEDULE_FILE}"
    )
    assert would in done.stdout
    assert len(slapd.searches()) - searched <= 5, "one search per user, in one gateway request"
    assert gitlab[0].total_calls("POST") == 0
    assert project(gitlab).merge_requests == []


def test_real_run_opens_one_mr_per_gone_user_and_finds_it_the_next_time(
    start: Start, gitlab: tuple[GitLabEmulator, ServerThread]
) -> None:
    gateway, _ = start()
    first = cli(gateway, gitlab, "--no-dry-run", FLAGS=NO_AUTO_MERGE)
    assert first.returncode == 0, first.stderr
    (mr,) = project(gitlab).merge_requests
    assert f"erin: merge request created: {mr['web_url']}" in first.stdout
    assert (mr["title"], mr["labels"], mr["target_branch"]) == (TITLE, ["ldap-users"], "master")
    commits = [
        (c["message"], c["actions"][0]["action"], c["actions"][0]["file_path"])
        for c in project(gitlab).commits
    ]
    assert commits == [
        (TITLE, "delete", "data/access/users/erin.yml"),
        (TITLE, "delete", "data/app-interface/requests/erin-creds.yml"),
        (TITLE, "update", GABI_FILE),
        (TITLE, "update", SCHEDULE_FILE),
    ]
    branch = project(gitlab).files[mr["source_branch"]]
    assert "data/access/users/erin.yml" not in branch
    assert branch[GABI_FILE] == GABI_TEXT.replace("- $ref: /access/users/erin.yml\n", "")
    assert branch[SCHEDULE_FILE] == SCHEDULE_TEXT.replace("  - $ref: /access/users/erin.yml\n", "")

    again = cli(gateway, gitlab, "--no-dry-run")
    assert again.returncode == 0, again.stderr
    assert f"erin: merge request exists: {mr['web_url']}" in again.stdout
    assert len(project(gitlab).merge_requests) == 1


def test_auto_merge_toggle_on_labels_the_mr_for_the_bot(
    start: Start, gitlab: tuple[GitLabEmulator, ServerThread]
) -> None:
    gateway, _ = start()
    flags = '{"ldap-users-api-allow-auto-merge-mrs": true}'
    done = cli(gateway, gitlab, "--no-dry-run", FLAGS=flags)
    assert done.returncode == 0, done.stderr
    assert project(gitlab).merge_requests[0]["labels"] == ["ldap-users", "bot/automerge"]


def test_ldap_reporting_that_nobody_exists_aborts_without_any_mr(
    start: Start, gitlab: tuple[GitLabEmulator, ServerThread]
) -> None:
    gateway, _ = start(base_dn=EMPTY_BASE_DN)
    done = cli(gateway, gitlab, "--no-dry-run")
    assert done.returncode == 1
    assert "LDAP reports that none of the 5 users exist" in done.stderr
    assert gitlab[0].total_calls() == 0


def test_more_than_the_allowed_fraction_gone_aborts_without_any_mr(
    start: Start, gitlab: tuple[GitLabEmulator, ServerThread]
) -> None:
    gateway, _ = start(gone=("erin", "frank"))
    done = cli(gateway, gitlab, "--no-dry-run")
    assert done.returncode == 1
    assert "2 of 6 users would be deleted, more than the 1 allowed" in done.stderr
    assert gitlab[0].total_calls() == 0


def test_a_file_sync_that_fails_is_exit_1_and_leaves_no_branch(
    start: Start, gitlab: tuple[GitLabEmulator, ServerThread]
) -> None:
    del project(gitlab).files["master"]["data/app-interface/requests/erin-creds.yml"]
    gateway, _ = start()
    done = cli(gateway, gitlab, "--no-dry-run")
    assert done.returncode == 1
    assert "A file with this name doesn't exist" in done.stdout
    assert "1 error(s) in 1 merge requests" in done.stderr
    assert list(project(gitlab).files) == ["master"]
    assert project(gitlab).merge_requests == []


def test_a_user_ldap_cannot_answer_for_is_kept_and_the_rest_proceeds(
    start: Start, gitlab: tuple[GitLabEmulator, ServerThread]
) -> None:
    gateway, _ = start(unanswerable=("not a uid",))
    done = cli(gateway, gitlab, "--no-dry-run", FLAGS=NO_AUTO_MERGE)
    assert done.returncode == 0, done.stderr
    assert "LDAP gave no answer for 'not a uid', kept" in done.stderr
    assert "1 of 6 users are gone from LDAP" in done.stdout
    assert [mr["title"] for mr in project(gitlab).merge_requests] == [TITLE]


def test_the_infra_repository_gets_one_mr_moving_the_users_read_past_the_cache(
    start: Start, gitlab: tuple[GitLabEmulator, ServerThread]
) -> None:
    gateway, _ = start()
    options = (
        *("--infra-repo-url", f"{gitlab[1].url}/{INFRA}"),
        *("--infra-path", GROUP_VARS, "--infra-path", "ansible/hosts/host_vars/none"),
    )
    dry = cli(gateway, gitlab, options=options)
    assert dry.returncode == 0, dry.stderr
    would = f"[dry-run] infra: would open '[create_ssh_key_mr] delete user(s)': update {GROUP_VARS}"
    assert would in dry.stdout
    infra_project = gitlab[0].state.project(INFRA)
    assert infra_project is not None
    edited_by_hand = GROUP_VARS_TEXT.replace("# managed by hand", "# edited since, by hand")
    infra_project.files["master"][GROUP_VARS] = edited_by_hand

    done = cli(gateway, gitlab, "--no-dry-run", options=options, FLAGS=NO_AUTO_MERGE)
    assert done.returncode == 0, done.stderr
    (mr,) = infra_project.merge_requests
    assert f"infra: merge request created: {mr['web_url']}" in done.stdout
    assert (mr["title"], mr["description"]) == (
        "[create_ssh_key_mr] delete user(s)",
        "delete user(s): erin",
    )
    assert infra_project.files[mr["source_branch"]][GROUP_VARS] == edited_by_hand.replace(
        "  - name: erin\n    key: ssh-ed25519 AAAA erin\n", ""
    ).replace("  - mallory\n", "  - mallory\n  - erin\n"), "the fresh text, edited in place"
    assert len(project(gitlab).merge_requests) == 1, "and erin's app-interface MR"


def test_a_referencing_file_the_edit_refuses_keeps_that_users_mr_closed(
    start: Start, gitlab: tuple[GitLabEmulator, ServerThread]
) -> None:
    flow = "users: [{$ref: /access/users/alice.yml}, {$ref: /access/users/erin.yml}]\n"
    project(gitlab).files["master"][GABI_FILE] = flow
    gateway, _ = start()
    done = cli(gateway, gitlab, "--no-dry-run")
    assert done.returncode == 1
    refused = f"error: erin: no merge request: {GABI_FILE}: the list 'users' is not a block list"
    assert refused in done.stdout
    assert project(gitlab).merge_requests == []
    assert gitlab[0].total_calls("POST") == 0
