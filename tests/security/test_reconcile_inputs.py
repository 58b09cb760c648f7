"""Hostile input to the OpenShift namespaces and GitHub owners reconciles and to `ldap_users_v1`,
through the gateway's HTTP endpoint (and, for the reconciles, a payload put straight into the
task queue of a real `gateway worker`) against emulators and a real slapd."""

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from gateway.auth import mint_token
from gateway.redis_keys import TaskKeys
from tests.emulators.github import GitHubEmulator
from tests.emulators.kubernetes import KubernetesEmulator, KubernetesState
from tests.ldap.conftest import (
    PASSWORD_VARIABLE,
    ldap_account,
    slapd,  # noqa: F401  (the session slapd fixture)
)
from tests.support.gateway import graphql
from tests.support.ldap_server import PrivateSlapd
from tests.support.server_thread import ServerThread
from tests.tasks.conftest import (
    TASKS,
    Worker,
    WorkerFactory,
    worker_factory,  # noqa: F401  (real Celery workers, killed at teardown)
)

SECRET = "reconcile-inputs-secret-0123456789abcdef"
CLUSTER_TOKEN = "sha256~reconcile-inputs-cluster-token"
GITHUB_TOKEN = "ghp-reconcile-inputs-token-456"
CLUSTER_TOKEN_ENV = "QGW_TEST_RECONCILE_INPUTS_CLUSTER_TOKEN"
GITHUB_TOKEN_ENV = "QGW_TEST_RECONCILE_INPUTS_GH_TOKEN"
MEGABYTE = "m" * 1_000_000
OPENSHIFT = """mutation Submit($input: OpenShiftNamespacesReconcileInput_v1!) {
  openshift_namespaces_reconcile_v1(input: $input) { id status }
}"""
GITHUB = """mutation Submit($input: GitHubOwnersReconcileInput_v1!) {
  github_owners_reconcile_v1(input: $input) { id status }
}"""
READ = """query Read($id: String!) {
  reconcile_task_v1(id: $id, wait_seconds: 30) {
    status error
    typed_result {
      status errors
      ... on OpenShiftNamespacesReconcileResult_v1 { actions { cluster namespace api } }
      ... on GitHubOwnersReconcileResult_v1 { actions { org login } }
    }
  }
}"""
USERS = """query Users($instance: String!, $usernames: [String!]!) {
  ldap_users_v1(instance: $instance, usernames: $usernames) { username exists }
}"""
HOSTILE_IDS = [
    "a/b",
    "..",
    "../app-sre",
    "%2F",
    "a%2Fb",
    "app?x=1",
    "app#x",
    "app\x00",
    "app\r\nX-Injected: 1",
    "äpp",
    "app\u202e",
    " app",
    "",
]


def short(value: str) -> str:
    """A parameter's id: its first characters, escaped."""
    return ascii(value[:24])


LDAP_METACHARACTERS = ["*", "a*", "*)(uid=*", "alice)(|(uid=*", "(", ")", "\\", "\\2a", "alice\x00"]


class Upstreams:
    """An OpenShift cluster `appsres01` (app-a, kube-system, default) and GitHub org `app-sre`
    (owner alice; bob a GitHub account), both emulated over loopback HTTP."""

    def __init__(self) -> None:
        self.cluster = KubernetesEmulator(KubernetesState(mode="openshift", token=CLUSTER_TOKEN))
        for name in ("default", "kube-system", "app-a"):
            self.cluster.state.add(name)
        self.github = GitHubEmulator()
        self.github.state.token = GITHUB_TOKEN
        self.github.state.add_member("app-sre", "alice", 1, "admin")
        self.github.state.add_user("bob", 2)
        self.cluster_server = ServerThread(self.cluster.app).start()
        self.github_server = ServerThread(self.github.app).start()

    def settings(self) -> dict[str, Any]:
        """`upstreams` naming both emulators (secrets from the environment)."""
        return {
            "openshift": [
                {
                    "name": "appsres01",
                    "server_url": self.cluster_server.url,
                    "token": {"env": CLUSTER_TOKEN_ENV},
                }
            ],
            "github": [
                {
                    "name": "app-sre",
                    "api_url": self.github_server.url,
                    "token": {"env": GITHUB_TOKEN_ENV},
                }
            ],
        }

    def calls(self) -> int:
        """Requests either emulator received."""
        return self.cluster.total_calls() + self.github.total_calls()

    def stop(self) -> None:
        """Stop both emulators."""
        self.cluster_server.kill()
        self.github_server.kill()


@pytest.fixture
def upstreams(monkeypatch: pytest.MonkeyPatch) -> Iterator[Upstreams]:
    """Both emulators, their tokens in the environment."""
    monkeypatch.setenv(CLUSTER_TOKEN_ENV, CLUSTER_TOKEN)
    monkeypatch.setenv(GITHUB_TOKEN_ENV, GITHUB_TOKEN)
    emulated = Upstreams()
    yield emulated
    emulated.stop()


@pytest.fixture
def gateway(gateway_factory: Callable[..., ServerThread], upstreams: Upstreams) -> ServerThread:
    """A gateway (`serve --role all`) with auth and both emulated upstreams."""
    return gateway_factory(auth={"secret": SECRET}, upstreams=upstreams.settings())


def call(gateway: ServerThread, query: str, scopes: list[str], **variables: Any) -> Any:
    """The JSON answer to `query` with a token holding `scopes`."""
    token = mint_token(SECRET, "reconcile-attacker", scopes, expires_days=1)
    return graphql(gateway, query, token, **variables)


def refused(body: dict[str, Any], code: str = "BAD_USER_INPUT") -> str:
    """The message of the single error of a refused request, checked to be small and coded."""
    assert body["data"] is None, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == code, error
    message: str = error["message"]
    assert len(message) < 2_000, message[:300]
    return message


def namespaces(gateway: ServerThread, dry_run: bool, names: list[dict[str, Any]]) -> Any:
    """Submit one run of `appsres01`; the whole answer."""
    scope = "reconcile:dry-run" if dry_run else "reconcile:apply"
    clusters = [{"name": "appsres01", "namespaces": names}]
    return call(gateway, OPENSHIFT, [scope], input={"dry_run": dry_run, "clusters": clusters})


def owners(gateway: ServerThread, dry_run: bool, *organizations: dict[str, Any]) -> Any:
    """Submit one owners run; the whole answer."""
    scope = "reconcile:dry-run" if dry_run else "reconcile:apply"
    variables = {"dry_run": dry_run, "organizations": list(organizations)}
    return call(gateway, GITHUB, [scope], input=variables)


def finished(gateway: ServerThread, task_id: str) -> dict[str, Any]:
    """The task once it ended (waiting up to 30 s)."""
    task: dict[str, Any] = call(gateway, READ, ["reconcile:dry-run"], id=task_id)["data"][
        "reconcile_task_v1"
    ]
    assert task["status"] in ("success", "failed"), task
    return task


# OpenShift namespaces


def test_a_namespace_list_past_the_bound_of_bad_items_is_refused_in_one_short_message(
    gateway: ServerThread, upstreams: Upstreams
) -> None:
    message = refused(namespaces(gateway, True, [{"name": ""}] * 20_000))
    assert "more" in message
    assert upstreams.calls() == 0


def test_many_clusters_and_a_huge_cluster_name_are_refused_before_any_call(
    gateway: ServerThread, upstreams: Upstreams
) -> None:
    many = [{"name": f"c{n}", "namespaces": []} for n in range(20_000)]
    refused(call(gateway, OPENSHIFT, ["reconcile:dry-run"], input={"clusters": many}))
    huge = [{"name": MEGABYTE[:900_000], "namespaces": []}]
    message = refused(call(gateway, OPENSHIFT, ["reconcile:dry-run"], input={"clusters": huge}))
    assert MEGABYTE[:100] not in message
    assert upstreams.calls() == 0


def test_hostile_namespace_names_never_reach_the_cluster_and_reserved_ones_skip_projects(
    gateway: ServerThread, upstreams: Upstreams
) -> None:
    hostile = [*HOSTILE_IDS[:-1], "App-A", "x" * 64, "-app", "app-"]
    desired = [{"name": name, "delete": True} for name in hostile]
    desired += [{"name": "kube-system", "delete": True}, {"name": "openshift-logging"}]
    desired += [{"name": "kube-extra"}, {"name": "kubernetes-x"}, {"name": "kube"}]
    desired += [{"name": "app-b"}, {"name": "app-b"}]
    answer = namespaces(gateway, False, desired)
    task = finished(gateway, answer["data"]["openshift_namespaces_reconcile_v1"]["id"])

    result = task["typed_result"]
    assert result["status"] == "failed"
    assert sorted(map(tuple, map(dict.values, result["actions"]))) == [
        ("appsres01", "app-b", "project"),
        ("appsres01", "kube", "namespace"),
        ("appsres01", "kube-extra", "namespace"),
        ("appsres01", "kubernetes-x", "namespace"),
        ("appsres01", "openshift-logging", "namespace"),
    ]
    assert len(result["errors"]) == len(hostile) + 1
    assert all(len(error) < 400 for error in result["errors"])
    assert any("kube-system: refused: a system namespace" in e for e in result["errors"])
    assert upstreams.cluster.total_calls("DELETE") == 0
    created = {"app-b", "openshift-logging", "kube-extra", "kubernetes-x", "kube"}
    assert upstreams.cluster.state.namespaces.keys() >= created
    assert set(upstreams.cluster.raw_paths) == {
        "/api/v1/namespaces",
        "/apis/project.openshift.io/v1/projects",
        "/apis/project.openshift.io/v1/projectrequests",
    }


def test_the_dry_run_scope_cannot_start_a_real_run(
    gateway: ServerThread, upstreams: Upstreams
) -> None:
    variables = {"dry_run": False, "clusters": [{"name": "appsres01", "namespaces": []}]}
    refused(call(gateway, OPENSHIFT, ["reconcile:dry-run"], input=variables), "FORBIDDEN")
    variables = {"dry_run": False, "organizations": [{"org": "app-sre", "owners": ["bob"]}]}
    refused(call(gateway, GITHUB, ["reconcile:dry-run"], input=variables), "FORBIDDEN")
    assert upstreams.calls() == 0


# GitHub owners


@pytest.mark.parametrize("login", [*HOSTILE_IDS, "a" * 40, MEGABYTE[:200_000]], ids=short)
def test_a_hostile_login_is_refused_at_submission_without_echoing_it(
    gateway: ServerThread, upstreams: Upstreams, login: str
) -> None:
    message = refused(owners(gateway, False, {"org": "app-sre", "owners": ["bob", login]}))
    assert "not a GitHub login" in message
    assert MEGABYTE[:100] not in message
    assert upstreams.calls() == 0


@pytest.mark.parametrize(
    "org", ["App-SRE", "app-sre/../x", "app-sre\x00", MEGABYTE[:200_000]], ids=short
)
def test_an_org_that_is_not_configured_is_refused_naming_the_configured_ones(
    gateway: ServerThread, upstreams: Upstreams, org: str
) -> None:
    message = refused(owners(gateway, True, {"org": org, "owners": ["bob"]}))
    assert "configured: app-sre" in message
    assert MEGABYTE[:100] not in message
    assert upstreams.calls() == 0


def test_huge_owner_and_org_lists_are_refused_naming_the_limit(
    gateway: ServerThread, upstreams: Upstreams
) -> None:
    message = refused(owners(gateway, True, {"org": "app-sre", "owners": ["bob"] * 100_000}))
    assert "limits.max_list_items" in message
    many = [{"org": "app-sre", "owners": []}] * 20_000
    assert "limits.max_list_items" in refused(owners(gateway, True, *many))
    assert upstreams.calls() == 0


def test_limits_raised_past_the_request_model_still_answer_bad_user_input(
    gateway_factory: Callable[..., ServerThread], upstreams: Upstreams
) -> None:
    limits = {"max_list_items": 30_000, "max_request_items": 60_000}
    gateway = gateway_factory(
        auth={"secret": SECRET}, upstreams=upstreams.settings(), limits=limits
    )
    message = refused(owners(gateway, True, {"org": "app-sre", "owners": ["bob"] * 25_000}))
    assert "at most 20000 items" in message
    assert upstreams.calls() == 0


def test_login_case_variants_and_repeats_are_one_owner(
    gateway: ServerThread, upstreams: Upstreams
) -> None:
    answer = owners(gateway, True, {"org": "app-sre", "owners": ["ALICE", "Bob", "bob", "BOB"]})
    task = finished(gateway, answer["data"]["github_owners_reconcile_v1"]["id"])
    assert task["typed_result"]["actions"] == [{"org": "app-sre", "login": "Bob"}]


# A malformed payload put straight into the task queue


@pytest.fixture
def api_gateway(gateway_factory: Callable[..., ServerThread], upstreams: Upstreams) -> ServerThread:
    """A gateway (`serve --role api`): its tasks wait in Redis for a Celery worker."""
    return gateway_factory(
        role="api", tasks=TASKS, auth={"secret": SECRET}, upstreams=upstreams.settings()
    )


@pytest.fixture
def worker(
    worker_factory: WorkerFactory,  # noqa: F811  (the imported fixture)
    upstreams: Upstreams,
) -> Callable[[], Worker]:
    """Start a real `python -m gateway worker` for dry runs with both upstreams."""
    env = {
        CLUSTER_TOKEN_ENV: CLUSTER_TOKEN,
        GITHUB_TOKEN_ENV: GITHUB_TOKEN,
        **{
            f"QONTRACT_GATEWAY_UPSTREAMS__{system.upper()}": json.dumps(accounts)
            for system, accounts in upstreams.settings().items()
        },
    }
    command = ["gateway", "worker", "--queues=reconcile-dry-run"]
    return lambda: worker_factory("reconcile-dry-run", command, env)


NOT_JSON = "is not a JSON object"
INVALID = "invalid reconcile request"
REPEATED = [f"{'o' * 60}{n:03d}" for n in range(250)] * 2
ALTERED = "dry_run differs from its task's"
MALFORMED: list[tuple[str, str, str]] = [
    ("openshift", "not json at all {", NOT_JSON),
    ("openshift", json.dumps(["clusters"]), NOT_JSON),
    ("openshift", json.dumps({MEGABYTE: 1}), INVALID),
    ("openshift", json.dumps({"clusters": [{"name": "c", "namespaces": [{"n": 1}]}] * 9}), INVALID),
    ("openshift", json.dumps({"clusters": [{"name": "appsres01", MEGABYTE: []}]}), INVALID),
    ("openshift", json.dumps({"clusters": [{"name": name} for name in REPEATED]}), "more than"),
    (
        "github",
        json.dumps({"organizations": [{"org": "app-sre", "owners": ["b"] * 100_001}]}),
        INVALID,
    ),
    ("github", json.dumps({"organizations": [{"org": MEGABYTE, "owners": []}]}), INVALID),
    ("github", json.dumps({"organizations": [{"org": "app-sre", "owners": [MEGABYTE]}]}), INVALID),
    ("github", json.dumps({"organizations": [{"org": "app-sre"}] * 100_001}), INVALID),
    ("github", json.dumps({"organizations": [{"org": name} for name in REPEATED]}), "more than"),
    ("openshift", json.dumps({"dry_run": False, "clusters": [{"name": "appsres01"}]}), ALTERED),
    ("github", json.dumps({"dry_run": False, "organizations": [{"org": "app-sre"}]}), ALTERED),
]


def test_malformed_payloads_in_the_queue_fail_their_task_clearly_and_the_worker_goes_on(
    api_gateway: ServerThread,
    worker: Callable[[], Worker],
    upstreams: Upstreams,
    redis_url: str,
    namespace: str,
) -> None:
    keys = TaskKeys(namespace)
    submitted: list[str] = []
    with redis.Redis.from_url(redis_url) as client:
        for system, payload, _ in MALFORMED:
            if system == "openshift":
                answer = namespaces(api_gateway, True, [{"name": "app-b"}])
                task_id = answer["data"]["openshift_namespaces_reconcile_v1"]["id"]
            else:
                answer = owners(api_gateway, True, {"org": "app-sre", "owners": ["bob"]})
                task_id = answer["data"]["github_owners_reconcile_v1"]["id"]
            client.hset(keys.record(task_id), "payload", payload)
            submitted.append(task_id)
    running = worker()
    for task_id, (system, payload, expected) in zip(submitted, MALFORMED, strict=True):
        task = finished(api_gateway, task_id)
        assert task["status"] == "failed", (system, payload[:80], task)
        assert expected in task["error"], task["error"][:300]
        assert len(task["error"]) < 2_000, task["error"][:300]
        assert MEGABYTE[:100] not in task["error"]
    assert upstreams.calls() == 0
    answer = namespaces(api_gateway, True, [{"name": "app-b"}])
    task = finished(api_gateway, answer["data"]["openshift_namespaces_reconcile_v1"]["id"])
    assert task["status"] == "success", task
    assert running.process.poll() is None, running.output()[-2_000:]
    assert MEGABYTE[:100] not in running.output(), "the worker's log echoes no payload"
    assert CLUSTER_TOKEN not in running.output()
    assert GITHUB_TOKEN not in running.output()


def test_a_corrupted_stored_result_fails_only_its_typed_view_with_a_coded_error(
    gateway: ServerThread, redis_url: str, namespace: str
) -> None:
    answer = namespaces(gateway, True, [{"name": "app-b"}])
    task_id = answer["data"]["openshift_namespaces_reconcile_v1"]["id"]
    assert finished(gateway, task_id)["status"] == "success"
    with redis.Redis.from_url(redis_url) as client:
        client.hset(TaskKeys(namespace).record(task_id), "result", json.dumps({"status": 7}))
    body = call(gateway, READ, ["reconcile:dry-run"], id=task_id)
    assert body["data"]["reconcile_task_v1"]["status"] == "success"
    assert body["data"]["reconcile_task_v1"]["typed_result"] is None
    [error] = body["errors"]
    assert error["path"] == ["reconcile_task_v1", "typed_result"]
    assert error["extensions"]["code"] == "INTERNAL"
    assert "status" not in error["message"]


# LDAP users


@pytest.fixture
def ldap_gateway(
    gateway_factory: Callable[..., ServerThread],
    slapd: PrivateSlapd,  # noqa: F811  (the imported fixture)
    monkeypatch: pytest.MonkeyPatch,
) -> ServerThread:
    """A gateway whose LDAP `main` is the session's slapd."""
    monkeypatch.setenv(PASSWORD_VARIABLE, slapd.bind_password)
    account = ldap_account(slapd).model_dump(mode="json", exclude_none=True)
    return gateway_factory(upstreams={"ldap": [account]})


def test_filter_metacharacters_never_match_anyone_nor_reach_the_directory(
    ldap_gateway: ServerThread,
    slapd: PrivateSlapd,  # noqa: F811
) -> None:
    before = len(slapd.searches())
    # `..` is a valid FreeIPA uid (`[a-zA-Z0-9_.][a-zA-Z0-9_.-]*`): no path ever holds it.
    hostile = [*LDAP_METACHARACTERS, *(i for i in HOSTILE_IDS if i != ".."), "a b", "a,ou=x"]
    body = graphql(ldap_gateway, USERS, instance="main", usernames=["ALICE", *hostile])

    assert body["data"]["ldap_users_v1"] == [{"username": "ALICE", "exists": True}] + [None] * len(
        hostile
    )
    assert len(body["errors"]) == len(hostile)
    for error in body["errors"]:
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert "not a LDAP username" in error["message"] or "LDAP username" in error["message"]
        assert len(error["message"]) < 400
    searched = slapd.searches()[before:]
    assert len(searched) == 1, "one search, for alice only"
    assert "alice" in searched[0].lower()
    assert not any(character in searched[0] for character in "*\\\x00")


def test_huge_username_lists_strings_and_instances_are_refused_before_any_search(
    ldap_gateway: ServerThread,
    slapd: PrivateSlapd,  # noqa: F811
) -> None:
    before = len(slapd.searches())
    many = refused(graphql(ldap_gateway, USERS, instance="main", usernames=["alice"] * 100_000))
    assert "limits.max_list_items" in many
    huge = refused(graphql(ldap_gateway, USERS, instance="main", usernames=[MEGABYTE[:500_000]]))
    assert "limits.max_string_length" in huge
    for instance in ["../main", "main\x00", "Main", MEGABYTE[:500_000]]:
        message = refused(graphql(ldap_gateway, USERS, instance=instance, usernames=["alice"]))
        assert MEGABYTE[:100] not in message
    assert slapd.searches()[before:] == []
