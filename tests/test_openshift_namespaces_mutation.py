"""`openshift_namespaces_reconcile_v1` end to end: the gateway's HTTP endpoint, its task engine
(in process, or real Celery worker processes) and Kubernetes emulators over loopback HTTP."""

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from gateway.auth import mint_token
from gateway.events.redis_streams import decode_entry
from gateway.redis_keys import stream_keys
from tests.emulators.kubernetes import KubernetesEmulator, KubernetesState
from tests.support.gateway import graphql
from tests.support.server_thread import ServerThread
from tests.support.wait import wait_until
from tests.tasks.conftest import (
    TASKS,
    Worker,
    WorkerFactory,
    worker_factory,  # noqa: F401  (real Celery workers, killed at teardown)
)
from tests.test_openshift import TOKEN, TOKEN_ENV

SECRET = "openshift-mutation-secret-0123456789abcdef"
PROJECT_REQUESTS = "POST /apis/project.openshift.io/v1/projectrequests"
SUBMIT = """mutation Submit($input: OpenShiftNamespacesReconcileInput_v1!) {
  openshift_namespaces_reconcile_v1(input: $input) { id status dry_run kind }
}"""
READ = """query Read($id: String!, $wait: Int) {
  reconcile_task_v1(id: $id, wait_seconds: $wait) {
    id status error
    typed_result {
      __typename status errors
      ... on OpenShiftNamespacesReconcileResult_v1 {
        applied_count
        actions { __typename cluster namespace api }
      }
    }
  }
}"""
DESIRED: list[dict[str, Any]] = [
    {"name": "app-old", "delete": True},
    {"name": "app-new"},
    {"name": "app-a"},
]

Clusters = dict[str, tuple[KubernetesEmulator, ServerThread]]


def _emulator(mode: str) -> KubernetesEmulator:
    emulator = KubernetesEmulator(KubernetesState(mode=mode, token=TOKEN))  # type: ignore[arg-type]
    for name in ("default", "kube-system", "app-a", "app-old"):
        emulator.state.add(name)
    return emulator


@pytest.fixture(name="clusters")
def clusters_fixture() -> Iterator[Clusters]:
    """`appsres01` (OpenShift) and `kind01` (plain Kubernetes), each with app-a and app-old."""
    emulators = {"appsres01": _emulator("openshift"), "kind01": _emulator("kubernetes")}
    servers = {name: ServerThread(emulator.app).start() for name, emulator in emulators.items()}
    yield {name: (emulators[name], servers[name]) for name in emulators}
    for server in servers.values():
        server.kill()


def accounts(clusters: Clusters) -> list[dict[str, Any]]:
    """`upstreams.openshift` for the emulated clusters."""
    return [
        {"name": name, "server_url": server.url, "token": {"env": TOKEN_ENV}}
        for name, (_, server) in clusters.items()
    ]


@pytest.fixture
def gateway(
    gateway_factory: Callable[..., ServerThread],
    clusters: Clusters,
    monkeypatch: pytest.MonkeyPatch,
) -> ServerThread:
    """A gateway (`serve --role all`) with both clusters configured."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return gateway_factory(auth={"secret": SECRET}, upstreams={"openshift": accounts(clusters)})


def call(gateway: ServerThread, scopes: list[str], query: str, **variables: Any) -> Any:
    """The JSON answer to `query` with a token holding `scopes`."""
    token = mint_token(SECRET, "openshift-namespaces-api", scopes, expires_days=1)
    return graphql(gateway, query, token, **variables)


def submit(gateway: ServerThread, dry_run: bool, **desired: list[dict[str, Any]]) -> Any:
    """Submit a run for `desired` (cluster name to namespaces); the whole answer."""
    clusters = [{"name": name, "namespaces": namespaces} for name, namespaces in desired.items()]
    scope = "reconcile:dry-run" if dry_run else "reconcile:apply"
    return call(gateway, [scope], SUBMIT, input={"dry_run": dry_run, "clusters": clusters})


def finished(gateway: ServerThread, task_id: str) -> dict[str, Any]:
    """The task once it ended (waiting up to 30 s)."""
    read = call(gateway, ["reconcile:dry-run"], READ, id=task_id, wait=30)
    task: dict[str, Any] = read["data"]["reconcile_task_v1"]
    assert task["status"] in ("success", "failed"), task
    return task


def run(gateway: ServerThread, dry_run: bool, **desired: list[dict[str, Any]]) -> dict[str, Any]:
    """Submit, wait, and return the typed result."""
    task = submit(gateway, dry_run, **desired)["data"]["openshift_namespaces_reconcile_v1"]
    assert task["status"] in ("pending", "running")
    assert task["kind"] == "openshift-namespaces.reconcile"
    result: dict[str, Any] = finished(gateway, task["id"])["typed_result"]
    return result


def events(redis_url: str, namespace: str) -> list[tuple[str, dict[str, Any]]]:
    """Every published event as (type, payload), oldest first."""
    with redis.Redis.from_url(redis_url) as client:
        entries: Any = client.xrange(stream_keys(namespace).stream)
    decoded = [decode_entry(fields) for _, fields in entries]
    return [(event.event_type, event.payload) for event in decoded]


def writes(clusters: Clusters) -> int:
    """POSTs and DELETEs every cluster received."""
    return sum(e.total_calls("POST") + e.total_calls("DELETE") for e, _ in clusters.values())


def test_dry_run_returns_typed_actions_writes_nothing_and_publishes_nothing(
    gateway: ServerThread, clusters: Clusters, redis_url: str, namespace: str
) -> None:
    result = run(gateway, True, appsres01=DESIRED, kind01=DESIRED)
    assert result["__typename"] == "OpenShiftNamespacesReconcileResult_v1"
    assert (result["status"], result["errors"], result["applied_count"]) == ("success", [], 0)
    assert result["actions"] == [
        {
            "__typename": "OpenShiftNamespaceDelete_v1",
            "cluster": "appsres01",
            "namespace": "app-old",
            "api": "project",
        },
        {
            "__typename": "OpenShiftNamespaceCreate_v1",
            "cluster": "appsres01",
            "namespace": "app-new",
            "api": "project",
        },
        {
            "__typename": "OpenShiftNamespaceDelete_v1",
            "cluster": "kind01",
            "namespace": "app-old",
            "api": "namespace",
        },
        {
            "__typename": "OpenShiftNamespaceCreate_v1",
            "cluster": "kind01",
            "namespace": "app-new",
            "api": "namespace",
        },
    ]
    assert writes(clusters) == 0
    assert events(redis_url, namespace) == []


def test_a_real_run_applies_publishes_its_events_and_a_dry_run_then_finds_nothing(
    gateway: ServerThread, clusters: Clusters, redis_url: str, namespace: str
) -> None:
    token = mint_token(SECRET, "openshift-namespaces-api", ["reconcile:apply"], expires_days=1)
    response = httpx.post(
        f"{gateway.url}/graphql",
        json={
            "query": SUBMIT,
            "variables": {
                "input": {
                    "dry_run": False,
                    "clusters": [{"name": "appsres01", "namespaces": DESIRED}],
                }
            },
        },
        headers={"authorization": f"Bearer {token}", "x-request-id": "req-ns-31"},
        timeout=30,
    )
    task_id = response.json()["data"]["openshift_namespaces_reconcile_v1"]["id"]
    applied = finished(gateway, task_id)["typed_result"]
    assert (applied["status"], applied["applied_count"]) == ("success", 2), applied
    emulator = clusters["appsres01"][0]
    assert emulator.total_calls(PROJECT_REQUESTS) == 1
    assert emulator.total_calls("DELETE /apis/project.openshift.io/v1/projects/app-old") == 1
    assert "app-new" in emulator.state.namespaces
    assert "app-old" not in emulator.state.namespaces

    published = events(redis_url, namespace)
    assert [event_type for event_type, _ in published] == [
        "openshift-namespaces.delete_namespace",
        "openshift-namespaces.create_namespace",
    ]
    assert all(
        (payload["task_id"], payload["request_id"]) == (task_id, "req-ns-31")
        for _, payload in published
    )
    assert published[1][1]["namespace"] == "app-new"

    again = run(gateway, True, appsres01=DESIRED)
    assert (again["status"], again["actions"]) == ("success", [])


def test_a_real_run_decides_on_the_cluster_as_it_is_not_on_the_cached_copy(
    gateway: ServerThread, clusters: Clusters
) -> None:
    emulator = clusters["kind01"][0]
    planned = run(gateway, True, kind01=[{"name": "made-elsewhere"}])
    assert [action["namespace"] for action in planned["actions"]] == ["made-elsewhere"]
    emulator.state.add("made-elsewhere")  # by someone else, after the dry run cached the list

    applied = run(gateway, False, kind01=[{"name": "made-elsewhere"}])

    assert (applied["status"], applied["actions"]) == ("success", [])
    assert emulator.total_calls("POST") == 0


def test_dry_run_scope_cannot_submit_a_real_run_and_read_scope_cannot_submit(
    gateway: ServerThread, clusters: Clusters
) -> None:
    variables = {"dry_run": False, "clusters": [{"name": "kind01", "namespaces": DESIRED}]}
    body = call(gateway, ["reconcile:dry-run"], SUBMIT, input=variables)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "reconcile:apply" in body["errors"][0]["message"]
    body = call(gateway, ["read"], SUBMIT, input={**variables, "dry_run": True})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert writes(clusters) == 0


@pytest.mark.parametrize(
    "name",
    ["elsewhere", "https://169.254.169.254", "127.0.0.1:6443", "../appsres01", "x" * 300],
)
def test_a_cluster_that_is_not_configured_is_refused_at_submission(
    gateway: ServerThread, clusters: Clusters, name: str
) -> None:
    body = submit(gateway, False, **{name: DESIRED, "kind01": DESIRED})
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "cluster" in error["message"]
    assert len(error["message"]) < 600
    assert name not in error["message"] or name == "elsewhere"
    if name == "elsewhere":
        assert (
            "unknown openshift clusters: elsewhere; configured: appsres01, kind01"
            in (error["message"])
        )
    assert sum(emulator.total_calls() for emulator, _ in clusters.values()) == 0


def test_a_cluster_listed_twice_is_refused_at_submission(
    gateway: ServerThread, clusters: Clusters
) -> None:
    body = call(
        gateway,
        ["reconcile:apply"],
        SUBMIT,
        input={
            "dry_run": False,
            "clusters": [
                {"name": "kind01", "namespaces": []},
                {"name": "kind01", "namespaces": []},
            ],
        },
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "clusters listed more than once: kind01" in body["errors"][0]["message"]


def test_a_cluster_answering_403_fails_alone_and_the_other_is_applied(
    gateway: ServerThread, clusters: Clusters, redis_url: str, namespace: str
) -> None:
    clusters["appsres01"][0].state.forbidden.add("list")
    result = run(gateway, False, appsres01=DESIRED, kind01=DESIRED)
    assert result["status"] == "failed"
    assert result["applied_count"] == 2
    assert {action["cluster"] for action in result["actions"]} == {"kind01"}
    [error] = result["errors"]
    assert error.startswith("appsres01: reading the namespaces failed")
    assert "HTTP 403 Forbidden" in error
    assert TOKEN not in error
    assert clusters["appsres01"][0].total_calls("POST") == 0
    assert ("openshift-namespaces.error", error) in [
        (event_type, payload.get("error")) for event_type, payload in events(redis_url, namespace)
    ]


def test_a_second_real_run_of_the_same_clusters_gets_the_running_task_and_overlap_conflicts(
    gateway: ServerThread, clusters: Clusters
) -> None:
    emulator = clusters["appsres01"][0]
    emulator.slow(2.0, times=1, path_prefix="/api/v1/namespaces")
    first = submit(gateway, False, appsres01=DESIRED)["data"]["openshift_namespaces_reconcile_v1"]
    same = submit(gateway, False, appsres01=DESIRED)["data"]["openshift_namespaces_reconcile_v1"]
    overlapping = submit(gateway, False, appsres01=DESIRED, kind01=DESIRED)
    dry = submit(gateway, True, appsres01=DESIRED)["data"]["openshift_namespaces_reconcile_v1"]

    assert same["id"] == first["id"]
    [conflict] = overlapping["errors"]
    assert conflict["extensions"]["code"] == "CONFLICT"
    assert conflict["extensions"]["task_id"] == first["id"]
    assert "openshift-namespaces:appsres01" in conflict["message"]
    assert dry["id"] != first["id"]
    assert finished(gateway, first["id"])["status"] == "success"
    assert emulator.total_calls(PROJECT_REQUESTS) == 1


@pytest.fixture
def api_gateway(
    gateway_factory: Callable[..., ServerThread],
    clusters: Clusters,
    monkeypatch: pytest.MonkeyPatch,
) -> ServerThread:
    """A gateway (`serve --role api`) whose tasks run on Celery workers; it sweeps for lost
    runs every second (heartbeats time out after 2 s)."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return gateway_factory(
        role="api",
        tasks=TASKS,
        auth={"secret": SECRET},
        upstreams={"openshift": accounts(clusters)},
    )


@pytest.fixture
def gateway_workers(
    worker_factory: WorkerFactory,  # noqa: F811  (the imported fixture)
    clusters: Clusters,
) -> Callable[[], Worker]:
    """Start real `python -m gateway worker` processes with both clusters configured."""
    env = {
        TOKEN_ENV: TOKEN,
        "QONTRACT_GATEWAY_UPSTREAMS__OPENSHIFT": json.dumps(accounts(clusters)),
    }
    command = ["gateway", "worker", "--queues=reconcile-apply"]
    return lambda: worker_factory("reconcile-apply", command, env)


def started_it(worker: Worker, task_id: str) -> bool:
    """Whether `worker` logged the start of a run of `task_id`."""
    return any("task started" in line and task_id in line for line in worker.output().splitlines())


def test_a_run_whose_worker_is_killed_midway_is_redone_without_applying_anything_twice(
    api_gateway: ServerThread,
    gateway_workers: Callable[[], Worker],
    clusters: Clusters,
    redis_url: str,
    namespace: str,
) -> None:
    """The worker running the task deletes app-old, then dies while its project request
    hangs; the rerun on the other worker reads the cluster afresh, so it deletes nothing again
    and requests app-new once more (the hung request, answered later, finds it there: 409 is
    success)."""
    emulator = clusters["appsres01"][0]
    emulator.slow(10.0, times=1, path_prefix="/apis/project.openshift.io/v1/projectrequests")
    workers = [gateway_workers(), gateway_workers()]
    task = submit(api_gateway, False, appsres01=DESIRED)["data"]
    task_id = task["openshift_namespaces_reconcile_v1"]["id"]
    wait_until(lambda: emulator.total_calls(PROJECT_REQUESTS) == 1, 60, "the hung request")
    assert "app-old" not in emulator.state.namespaces
    wait_until(lambda: any(started_it(w, task_id) for w in workers), 10, "the run's start log")
    [running] = [worker for worker in workers if started_it(worker, task_id)]
    [other] = [worker for worker in workers if worker is not running]

    running.kill()
    done = finished(api_gateway, task_id)

    result = done["typed_result"]
    assert (done["status"], result["status"], result["errors"]) == ("success", "success", [])
    assert [(a["__typename"], a["namespace"]) for a in result["actions"]] == [
        ("OpenShiftNamespaceCreate_v1", "app-new")
    ]
    assert started_it(other, task_id), "redone by the other worker"
    assert emulator.total_calls("DELETE") == 1
    assert emulator.total_calls(PROJECT_REQUESTS) == 2
    wait_until(lambda: emulator.in_flight == 0, 30, "the hung request's late answer")
    assert sorted(emulator.state.namespaces) == ["app-a", "app-new", "default", "kube-system"]
    published = [
        (event_type, payload["namespace"], payload["task_id"])
        for event_type, payload in events(redis_url, namespace)
    ]
    assert published == [
        ("openshift-namespaces.delete_namespace", "app-old", task_id),
        ("openshift-namespaces.create_namespace", "app-new", task_id),
    ]
    assert other.process.poll() is None
