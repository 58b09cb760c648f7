"""OpenShift namespaces: the API client, cached source and reconcile against emulated clusters.

Every cluster is a Kubernetes emulator over real HTTP; cache, rate limiter and event stream
are a real Redis. Sources are built by the system registry from `upstreams.openshift`, as the
gateway and its workers build them.
"""

import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from gateway.errors import BadUserInput, UpstreamError, UpstreamUnavailable
from gateway.events import EventMetrics, EventPublisher, create_event_publisher
from gateway.events.redis_streams import decode_entry
from gateway.redis_keys import stream_keys
from gateway.registry import Sources, configured_accounts
from gateway.runtime import Runtime
from gateway.settings import InvalidSettings
from resolvers.openshift.reconcile import (
    OpenShiftNamespacesReconcile,
    compute_actions,
    reconcile,
)
from resolvers.openshift.reconcile_models import ClusterRequest, ReconcileRequest
from resolvers.openshift.source import ClusterNamespaces, OpenShiftSource
from resolvers.openshift.system import SYSTEM
from resolvers.systems import SYSTEMS
from tests.emulators.kubernetes import KubernetesEmulator, KubernetesState
from tests.support.gateway import gateway_settings
from tests.support.server_thread import ServerThread

TOKEN = "sha256~openshift-cluster-secret-789"
TOKEN_ENV = "QGW_TEST_OPENSHIFT_TOKEN"
HOSTILE = [
    "../kube-system",
    "a/b",
    "app?watch=true",
    "app#x",
    "%2e%2e",
    "..",
    "UPPER",
    "app\r\nX-Injected: 1",
    "x" * 64,
    "y" * 10_000,
]


@dataclass
class Clusters:
    """The emulated clusters by name, the registry's sources, the publisher and the test's
    Redis."""

    emulators: dict[str, KubernetesEmulator]
    registry: Sources
    publisher: EventPublisher
    runtime: Runtime
    namespace: str

    @property
    def sources(self) -> dict[str, OpenShiftSource]:
        """Each configured cluster's source, by name."""
        return self.registry.of(OpenShiftSource)

    async def run(self, dry_run: bool, **clusters: list[dict[str, Any]]) -> dict[str, Any]:
        """Run the reconcile task with `clusters` (name to desired namespaces)."""
        task = OpenShiftNamespacesReconcile(self.registry, self.publisher)
        payload = {
            "dry_run": dry_run,
            "clusters": [{"name": name, "namespaces": wanted} for name, wanted in clusters.items()],
        }
        return await task(payload)

    async def events(self) -> list[tuple[str, dict[str, Any]]]:
        """Every published event as (type, payload), oldest first."""
        entries: Any = await self.runtime.redis.xrange(stream_keys(self.namespace).stream)
        return [(e.event_type, e.payload) for e in (decode_entry(f) for _, f in entries)]


def _emulator(mode: str, *names: str) -> KubernetesEmulator:
    emulator = KubernetesEmulator(KubernetesState(mode=mode, token=TOKEN))  # type: ignore[arg-type]
    for name in ("default", "kube-system", "openshift-monitoring", *names):
        emulator.state.add(name)
    return emulator


@pytest.fixture
def served() -> Iterator[dict[str, tuple[KubernetesEmulator, str]]]:
    emulators = {
        "appsres01": _emulator("openshift", "app-a", "app-old"),
        "appsres02": _emulator("openshift", *(f"team-{n:04d}" for n in range(1_200))),
        "kind01": _emulator("kubernetes", "app-a", "app-old"),
    }
    with ExitStack() as stack:
        yield {
            name: (emulator, stack.enter_context(ServerThread(emulator.app)).url)
            for name, emulator in emulators.items()
        }


@pytest.fixture
async def clusters(
    served: dict[str, tuple[KubernetesEmulator, str]],
    redis_url: str,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Clusters]:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    accounts = [
        {"name": name, "server_url": url, "token": {"env": TOKEN_ENV}}
        for name, (_, url) in served.items()
    ]
    runtime, sources = cluster_sources(redis_url, namespace, accounts)
    publisher = create_event_publisher(
        "redis",
        metrics=EventMetrics(CollectorRegistry()),
        redis_client=runtime.redis,
        namespace=namespace,
    )
    yield Clusters(
        {name: emulator for name, (emulator, _) in served.items()},
        sources,
        publisher,
        runtime,
        namespace,
    )
    await sources.aclose()
    await runtime.aclose()


def cluster_sources(
    redis_url: str, namespace: str, accounts: list[dict[str, Any]]
) -> tuple[Runtime, Sources]:
    """A runtime on the test's Redis and the registry's sources for `upstreams.openshift`."""
    runtime = Runtime.create(
        gateway_settings(redis_url, namespace, upstreams={"openshift": accounts})
    )
    return runtime, Sources.create(runtime, SYSTEMS)


async def test_an_openshift_cluster_is_listed_across_pages_then_served_from_the_cache(
    clusters: Clusters,
) -> None:
    emulator, source = clusters.emulators["appsres02"], clusters.sources["appsres02"]
    first = await source.namespaces()
    second = await source.namespaces()
    assert first.value["openshift"] is True
    assert len(first.value["namespaces"]) == 1_203
    assert first.value["namespaces"]["team-0999"] == "Active"
    assert (first.lookup.outcome, second.lookup.outcome) == ("miss", "hit")
    assert emulator.total_calls("GET /api/v1/namespaces") == 3
    assert emulator.total_calls("GET /apis/project.openshift.io/v1/projects") == 1


async def test_an_expired_continue_token_restarts_the_walk_once(clusters: Clusters) -> None:
    emulator, source = clusters.emulators["appsres02"], clusters.sources["appsres02"]
    emulator.state.expire_continues = 1
    assert len((await source.namespaces()).value["namespaces"]) == 1_203
    assert emulator.total_calls("GET /api/v1/namespaces") == 5
    emulator.state.expire_continues = 2
    with pytest.raises(UpstreamError, match="410 Expired"):
        await source.api.namespaces()


async def test_a_plain_kubernetes_cluster_is_told_by_the_404_of_the_project_api(
    clusters: Clusters,
) -> None:
    current = (await clusters.sources["kind01"].namespaces()).value
    assert current["openshift"] is False
    assert set(current["namespaces"]) >= {"app-a", "app-old", "default"}


@pytest.mark.parametrize(("cluster", "openshift"), [("appsres01", True), ("kind01", False)])
async def test_a_token_that_may_not_list_projects_is_told_apart_by_discovery(
    clusters: Clusters, cluster: str, openshift: bool
) -> None:
    emulator = clusters.emulators[cluster]
    emulator.state.forbidden.add("list projects")
    current = (await clusters.sources[cluster].namespaces()).value
    assert current["openshift"] is openshift
    assert emulator.total_calls("GET /apis/project.openshift.io/v1/projects") == 1
    assert emulator.total_calls("GET /apis/project.openshift.io/v1") == 2


async def test_dry_run_lists_the_actions_and_writes_nothing(clusters: Clusters) -> None:
    result = await clusters.run(
        True,
        appsres01=[{"name": "app-a"}, {"name": "app-new"}, {"name": "app-old", "delete": True}],
    )
    assert result["status"] == "success"
    assert result["applied_count"] == 0
    assert result["actions"] == [
        {
            "kind": "create_namespace",
            "cluster": "appsres01",
            "namespace": "app-new",
            "api": "project",
        },
        {
            "kind": "delete_namespace",
            "cluster": "appsres01",
            "namespace": "app-old",
            "api": "project",
        },
    ]
    emulator = clusters.emulators["appsres01"]
    assert emulator.total_calls("POST") == emulator.total_calls("DELETE") == 0
    assert await clusters.events() == []


async def test_openshift_creates_projects_but_openshift_prefixed_names_as_namespaces(
    clusters: Clusters,
) -> None:
    result = await clusters.run(
        False,
        appsres01=[
            {"name": "app-new"},
            {"name": "openshift-logging-extra"},
            {"name": "app-old", "delete": True},
            {"name": "openshift-monitoring", "delete": True},
        ],
    )
    assert result["status"] == "success", result["errors"]
    assert result["applied_count"] == 4
    emulator = clusters.emulators["appsres01"]
    assert emulator.total_calls("POST /apis/project.openshift.io/v1/projectrequests") == 1
    assert emulator.total_calls("POST /api/v1/namespaces") == 1
    assert emulator.total_calls("DELETE /apis/project.openshift.io/v1/projects/app-old") == 1
    assert emulator.total_calls("DELETE /api/v1/namespaces/openshift-monitoring") == 1
    present = set(emulator.state.namespaces)
    assert {"app-new", "openshift-logging-extra"} <= present
    assert not {"app-old", "openshift-monitoring"} & present
    assert emulator.state.namespaces["app-new"].requester is not None
    current = (await clusters.sources["appsres01"].namespaces()).value
    assert "app-new" in current["namespaces"]
    assert "app-old" not in current["namespaces"]
    kinds = [event_type for event_type, _ in await clusters.events()]
    assert kinds.count("openshift-namespaces.create_namespace") == 2
    assert kinds.count("openshift-namespaces.delete_namespace") == 2


async def test_plain_kubernetes_creates_and_deletes_namespaces(clusters: Clusters) -> None:
    result = await clusters.run(
        False, kind01=[{"name": "app-new"}, {"name": "app-old", "delete": True}]
    )
    assert result["status"] == "success", result["errors"]
    assert [action["api"] for action in result["actions"]] == ["namespace", "namespace"]
    emulator = clusters.emulators["kind01"]
    assert emulator.total_calls("POST /api/v1/namespaces") == 1
    assert emulator.total_calls("DELETE /api/v1/namespaces/app-old") == 1
    assert emulator.total_calls("POST /apis/") == 0
    assert "app-new" in emulator.state.namespaces
    assert "app-old" not in emulator.state.namespaces


async def test_already_existing_on_create_and_missing_on_delete_are_successes(
    clusters: Clusters,
) -> None:
    api = clusters.sources["appsres01"].api
    await api.create_namespace("app-a", openshift=True)
    await api.create_namespace("app-a", openshift=False)
    await api.delete_namespace("never-there", openshift=True)
    await api.delete_namespace("never-there", openshift=False)
    emulator = clusters.emulators["appsres01"]
    assert emulator.total_calls("POST") == 2
    assert emulator.total_calls("DELETE") == 2


async def test_a_cluster_that_answers_403_fails_alone_with_the_reason(
    clusters: Clusters,
) -> None:
    clusters.emulators["appsres01"].state.forbidden.add("list")
    result = await clusters.run(
        False, appsres01=[{"name": "app-new"}], kind01=[{"name": "app-new"}]
    )
    assert result["status"] == "failed"
    assert result["applied_count"] == 1
    assert [action["cluster"] for action in result["actions"]] == ["kind01"]
    [error] = result["errors"]
    assert error.startswith("appsres01: reading the namespaces failed")
    assert "HTTP 403 Forbidden" in error
    assert 'cannot list resource "namespaces"' in error
    assert TOKEN not in error
    assert clusters.emulators["appsres01"].total_calls("POST") == 0
    events = await clusters.events()
    assert (
        "openshift-namespaces.error",
        {"cluster": "appsres01", "namespace": "", "error": error},
    ) in events


async def test_a_403_on_one_write_is_that_action_s_error_and_the_rest_is_applied(
    clusters: Clusters,
) -> None:
    emulator = clusters.emulators["kind01"]
    emulator.state.forbidden.add("delete")
    result = await clusters.run(
        False, kind01=[{"name": "app-old", "delete": True}, {"name": "app-new"}]
    )
    assert result["status"] == "failed"
    assert result["applied_count"] == 1
    [error] = result["errors"]
    assert error.startswith("kind01/app-old: delete_namespace failed:")
    assert "403 Forbidden" in error
    assert "app-new" in emulator.state.namespaces
    assert "app-old" in emulator.state.namespaces


async def test_403_and_401_are_upstream_errors_with_the_status_reason(
    clusters: Clusters,
) -> None:
    emulator = clusters.emulators["kind01"]
    api = clusters.sources["kind01"].api
    emulator.state.forbidden.add("create")
    with pytest.raises(UpstreamError) as forbidden:
        await api.create_namespace("app-new", openshift=False)
    assert forbidden.value.extensions["code"] == "UPSTREAM_ERROR"
    assert forbidden.value.extensions["reason"] == "Forbidden"
    assert forbidden.value.extensions["status"] == 403
    emulator.state.token = "sha256~rotated"
    with pytest.raises(UpstreamError) as unauthorized:
        await api.namespaces()
    assert unauthorized.value.extensions["reason"] == "Unauthorized"
    assert TOKEN not in unauthorized.value.message


async def test_hostile_names_are_refused_before_any_request(clusters: Clusters) -> None:
    emulator = clusters.emulators["appsres01"]
    api = clusters.sources["appsres01"].api
    for name in HOSTILE:
        with pytest.raises(BadUserInput):
            await api.delete_namespace(name, openshift=True)
        with pytest.raises(BadUserInput):
            await api.create_namespace(name, openshift=False)
    assert emulator.total_calls() == 0
    result = await clusters.run(
        False, appsres01=[{"name": name, "delete": True} for name in HOSTILE[:-1]]
    )
    assert result["actions"] == []
    assert len(result["errors"]) == len(HOSTILE) - 1
    assert all("not a Kubernetes namespace name" in error for error in result["errors"])
    assert max(len(error) for error in result["errors"]) < 400
    assert emulator.total_calls("DELETE") == 0
    assert set(emulator.raw_paths) == {
        "/api/v1/namespaces",
        "/apis/project.openshift.io/v1/projects",
    }


async def test_an_oversized_name_is_refused_by_the_request_model(clusters: Clusters) -> None:
    with pytest.raises(BadUserInput) as refused:
        await clusters.run(False, appsres01=[{"name": HOSTILE[-1], "delete": True}])
    assert HOSTILE[-1][:100] not in refused.value.message
    assert clusters.emulators["appsres01"].total_calls() == 0


async def test_a_request_beyond_the_namespace_bound_is_refused_whole(
    clusters: Clusters,
) -> None:
    many = [{"name": f"ns-{n}"} for n in range(20_000)]
    with pytest.raises(BadUserInput, match="at most 50000 namespaces"):
        await clusters.run(False, appsres01=many, appsres02=many, kind01=many)
    assert sum(emulator.total_calls() for emulator in clusters.emulators.values()) == 0


async def test_unknown_or_repeated_clusters_are_bad_user_input_before_any_call(
    clusters: Clusters,
) -> None:
    with pytest.raises(BadUserInput) as unknown:
        await clusters.run(False, elsewhere=[{"name": "app-new"}])
    assert "elsewhere" in unknown.value.message
    assert "appsres01" in unknown.value.message
    request = ReconcileRequest.model_validate(
        {"dry_run": False, "clusters": [{"name": "kind01"}, {"name": "kind01"}]}
    )
    with pytest.raises(BadUserInput, match="more than once"):
        await reconcile(request, clusters.registry, clusters.publisher)
    with pytest.raises(BadUserInput):
        await clusters.run(False, **{"http://169.254.169.254/": [{"name": "x"}]})
    with pytest.raises(BadUserInput) as many:
        await clusters.run(False, **{f"gone-{n:03d}": [] for n in range(400)})
    assert "gone-000, gone-001" in many.value.message
    assert "gone-010" not in many.value.message
    assert "and 390 more; configured: appsres01, appsres02, kind01" in many.value.message
    assert sum(emulator.total_calls() for emulator in clusters.emulators.values()) == 0


async def test_a_terminating_namespace_is_not_recreated_nor_deleted_again(
    clusters: Clusters,
) -> None:
    emulator = clusters.emulators["appsres01"]
    emulator.state.add("leaving", phase="Terminating")
    result = await clusters.run(
        False, appsres01=[{"name": "leaving"}, {"name": "app-a", "delete": False}]
    )
    assert result["actions"] == []
    assert result["errors"] == [
        "appsres01/leaving: still terminating; it is created once it is gone"
    ]
    result = await clusters.run(False, appsres01=[{"name": "leaving", "delete": True}])
    assert (result["status"], result["actions"]) == ("success", [])
    assert emulator.total_calls("POST") == emulator.total_calls("DELETE") == 0


async def test_system_namespaces_are_never_deleted(clusters: Clusters) -> None:
    result = await clusters.run(
        False, kind01=[{"name": name, "delete": True} for name in ("default", "kube-system")]
    )
    assert result["errors"] == [
        "kind01/default: refused: a system namespace",
        "kind01/kube-system: refused: a system namespace",
    ]
    assert clusters.emulators["kind01"].total_calls("DELETE") == 0


async def test_a_namespace_both_kept_and_deleted_is_refused(clusters: Clusters) -> None:
    result = await clusters.run(
        False,
        kind01=[
            {"name": "app-old", "delete": True},
            {"name": "app-old"},
            {"name": "app-new"},
            {"name": "app-new"},
        ],
    )
    assert result["errors"] == ["kind01/app-old: listed both to keep and to delete"]
    assert [action["namespace"] for action in result["actions"]] == ["app-new"]
    assert clusters.emulators["kind01"].total_calls("POST /api/v1/namespaces") == 1


async def test_many_clusters_with_a_bound_of_one_are_all_reconciled(clusters: Clusters) -> None:
    request = ReconcileRequest.model_validate(
        {
            "dry_run": False,
            "clusters": [
                {"name": name, "namespaces": [{"name": "shared-new"}]} for name in clusters.sources
            ],
        }
    )
    result = await reconcile(request, clusters.registry, clusters.publisher, concurrency=1)
    assert (result.status, result.applied_count) == ("success", 3)
    assert all("shared-new" in e.state.namespaces for e in clusters.emulators.values())
    assert request.resource == (
        "openshift-namespaces:appsres01 openshift-namespaces:appsres02 openshift-namespaces:kind01"
    )


def test_the_diff_of_1000_namespaces_over_50_clusters_takes_well_under_a_second() -> None:
    requests, states = [], []
    for c in range(50):
        names = [f"ns-{c:02d}-{n:03d}" for n in range(20)]
        requests.append(
            ClusterRequest.model_validate(
                {
                    "name": f"cluster-{c:02d}",
                    "namespaces": [
                        {"name": name, "delete": n % 7 == 0} for n, name in enumerate(names)
                    ],
                }
            )
        )
        existing = {name: "Active" for name in names[::2]} | {
            f"other-{n}": "Active" for n in range(200)
        }
        states.append(ClusterNamespaces(openshift=c % 2 == 0, namespaces=existing))
    started = time.perf_counter()
    outcomes = [compute_actions(r, s) for r, s in zip(requests, states, strict=True)]
    elapsed = time.perf_counter() - started
    kinds = [action.kind for actions, _ in outcomes for action in actions]
    # per cluster: odd names absent (9 to create, 7 is to delete), 0 and 14 present to delete
    assert kinds.count("create_namespace") == 50 * 9
    assert kinds.count("delete_namespace") == 50 * 2
    assert all(errors == [] for _, errors in outcomes)
    assert elapsed < 1.0


def test_cluster_settings_refuse_bad_urls_duplicates_and_unknown_keys() -> None:
    token = {"env": TOKEN_ENV}
    good = {"name": "appsres01", "server_url": "https://api.appsres01.example:6443", "token": token}
    [(system, account)] = configured_accounts({"openshift": [good]}, SYSTEMS)
    assert system is SYSTEM
    assert account.insecure_skip_tls_verify is False
    for bad, field in (
        ({**good, "server_url": "https://api.example:6443/path?x=1"}, "openshift.0.server_url"),
        ({**good, "name": "../x"}, "openshift.0.name"),
        ({**good, "password": "hunter2"}, "openshift.0.password"),
        ({**good, "token": {"env": "A", "file": "/b"}}, "openshift.0.token"),
        ({**good, "ttl": {"usergroups": 5}}, "openshift.0.ttl"),
        ({"name": "x", "api_url": "https://api.x:6443", "token": token}, "openshift.0.api_url"),
    ):
        with pytest.raises(InvalidSettings) as refused:
            configured_accounts({"openshift": [bad]}, SYSTEMS)
        assert field in str(refused.value)
        assert "hunter2" not in str(refused.value)
    with pytest.raises(InvalidSettings, match="account names repeated: appsres01"):
        configured_accounts({"openshift": [good, good]}, SYSTEMS)


def _self_signed(directory: Path) -> tuple[str, str]:
    """A certificate for 127.0.0.1 that no trust store knows, and its key."""
    cert, key = directory / "cluster.crt", directory / "cluster.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return str(cert), str(key)


async def test_insecure_skip_tls_verify_alone_lets_a_self_signed_cluster_answer(
    redis_url: str, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    cert, key = _self_signed(tmp_path)
    emulator = _emulator("openshift", "app-a")
    with ServerThread(emulator.app, ssl_certfile=cert, ssl_keyfile=key) as server:
        assert server.url.startswith("https://")
        runtime, sources = cluster_sources(
            redis_url,
            namespace,
            [
                {
                    "name": name,
                    "server_url": server.url,
                    "token": {"env": TOKEN_ENV},
                    "insecure_skip_tls_verify": insecure,
                }
                for name, insecure in (("checked", False), ("lab", True))
            ],
        )
        checked, lab = (sources.get(OpenShiftSource, name) for name in ("checked", "lab"))
        try:
            with pytest.raises(UpstreamUnavailable):
                await checked.api.namespaces()
            assert emulator.total_calls() == 0
            names = {item.metadata.name for item in await lab.api.namespaces()}
            assert "app-a" in names
        finally:
            await sources.aclose()
            await runtime.aclose()


async def test_no_more_clusters_than_the_bound_are_read_at_once(
    redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    emulator = _emulator("openshift")
    emulator.slow(0.2, times=1_000)
    with ServerThread(emulator.app) as server:
        runtime, sources = cluster_sources(
            redis_url,
            namespace,
            [
                {"name": f"shard{n}", "server_url": server.url, "token": {"env": TOKEN_ENV}}
                for n in range(6)
            ],
        )
        request = ReconcileRequest.model_validate(
            {"clusters": [{"name": f"shard{n}", "namespaces": [{"name": "app"}]} for n in range(6)]}
        )
        publisher = create_event_publisher(
            "redis",
            metrics=EventMetrics(CollectorRegistry()),
            redis_client=runtime.redis,
            namespace=namespace,
        )
        result = await reconcile(request, sources, publisher, concurrency=2)
        await sources.aclose()
    await runtime.aclose()
    assert len(result.actions) == 6
    # each cluster read is the project probe and the namespace list, side by side
    assert 2 <= emulator.peak_in_flight <= 4
