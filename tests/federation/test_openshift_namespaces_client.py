"""openshift-namespaces-api end to end: the CLI against the qontract-server stand-in (with
namespaces and clusters added to the recorded bundle), a gateway federating it, and Kubernetes
emulators for the clusters, all over loopback HTTP."""

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.client.conftest import run_cli
from tests.emulators.qontract_bundle import BUNDLE_PATH, load_bundle_dict, ref, with_datafiles
from tests.emulators.qontract_server_standin import QontractServerStandin
from tests.support.server_thread import ServerThread
from tests.support.wait import wait_until
from tests.test_openshift import TOKEN, TOKEN_ENV
from tests.test_openshift_namespaces_mutation import (
    Clusters,
    accounts,
    clusters_fixture,  # noqa: F401  (the `clusters` fixture)
)

COMMAND = "openshift-namespaces-api"
CLUSTER_SCHEMA = "/openshift/cluster-1.yml"
NAMESPACE_SCHEMA = "/openshift/namespace-1.yml"
TASK = """query Task($id: String!) {
  reconcile_task_v1(id: $id, wait_seconds: 60) {
    status typed_result { status errors ... on OpenShiftNamespacesReconcileResult_v1 {
      applied_count } }
  }
}"""
EXPECTED = {
    "[dry-run] create_namespace appsres01/app-new (project)",
    "[dry-run] create_namespace appsres01/openshift-extra (namespace)",
    "[dry-run] delete_namespace appsres01/app-old (project)",
    "[dry-run] create_namespace kind01/team-x (namespace)",
}


def cluster(name: str, token: bool = True, disabled: list[str] | None = None) -> dict[str, Any]:
    """A Cluster_v1 datafile (with only what the integration reads filled in meaningfully)."""
    datafile: dict[str, Any] = {
        "$schema": CLUSTER_SCHEMA,
        "labels": {},
        "name": name,
        "serverUrl": f"https://api.{name}.example:6443",
        "consoleUrl": f"https://console.{name}.example",
        "prometheusUrl": f"https://prometheus.{name}.example",
        "alertmanagerUrl": f"https://alertmanager.{name}.example",
        "elbFQDN": f"elb.{name}.example",
        "auth": [],
    }
    if token:
        datafile["automationToken"] = {"path": f"app-sre/creds/{name}", "field": "token"}
    if disabled is not None:
        datafile["disable"] = {"integrations": disabled}
    return datafile


def namespace(name: str, on: str, delete: bool | None = None) -> dict[str, Any]:
    """A Namespace_v1 datafile on cluster `on`."""
    datafile: dict[str, Any] = {
        "$schema": NAMESPACE_SCHEMA,
        "labels": {},
        "name": name,
        "description": f"{name} on {on}",
        "cluster": ref(f"/openshift/{on}/cluster.yml"),
        "app": ref("/services/app/app.yml"),
        "environment": ref("/products/app/production.yml"),
    }
    if delete is not None:
        datafile["delete"] = delete
    return datafile


def app_interface_bundle(**extra_clusters: dict[str, Any]) -> dict[str, Any]:
    """The recorded bundle plus the integration, four clusters and their namespaces.

    `legacy` disables openshift-namespaces and `notoken` has no automation token: both are
    skipped (neither is configured in the gateway, which would refuse them)."""
    bundle = load_bundle_dict(BUNDLE_PATH)
    clusters = {
        "appsres01": cluster("appsres01"),
        "kind01": cluster("kind01"),
        "legacy": cluster("legacy", disabled=["openshift-namespaces"]),
        "notoken": cluster("notoken", token=False),
        **extra_clusters,
    }
    namespaces = [
        namespace("app-a", "appsres01"),
        namespace("app-new", "appsres01"),
        namespace("app-old", "appsres01", delete=True),
        namespace("openshift-extra", "appsres01", delete=False),
        namespace("team-x", "kind01"),
        namespace("team-x", "kind01"),
        namespace("old-y", "legacy", delete=True),
        namespace("new-z", "notoken"),
        *(namespace("ns-1", name) for name in extra_clusters),
    ]
    datafiles: dict[str, dict[str, Any]] = {
        "/integrations/openshift-namespaces-api.yml": {
            "$schema": "/app-sre/integration-1.yml",
            "name": COMMAND,
            "description": "openshift-namespaces through the qontract-gateway",
            "labels": {},
            "schemas": [CLUSTER_SCHEMA, NAMESPACE_SCHEMA],
        },
        **{f"/openshift/{name}/cluster.yml": datafile for name, datafile in clusters.items()},
        **{
            f"/openshift/{item['cluster']['$ref'].split('/')[2]}/namespaces/{n}.yml": item
            for n, item in enumerate(namespaces)
        },
    }
    result: dict[str, Any] = with_datafiles(bundle, datafiles)
    return result


@pytest.fixture
def app_interface() -> Iterator[QontractServerStandin]:
    """The stand-in serving the bundle with namespaces."""
    with QontractServerStandin(app_interface_bundle()) as server:
        yield server


@pytest.fixture
def gateway(
    app_interface: QontractServerStandin,
    clusters: Clusters,
    federated_factory: Callable[..., ServerThread],
    monkeypatch: pytest.MonkeyPatch,
) -> ServerThread:
    """A gateway federating the stand-in, with the two emulated clusters configured."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return federated_factory(app_interface.url, upstreams_extra={"openshift": accounts(clusters)})


def federated(gateway: ServerThread) -> dict[str, str]:
    """The CLI's environment for a federating gateway (no qontract_server configured)."""
    return {"QONTRACT_RECONCILE_API_GATEWAY__URL": f"{gateway.url}/graphql"}


def dry_run_lines(stdout: str) -> set[str]:
    """The `[dry-run]` action lines of the output."""
    return {line for line in stdout.splitlines() if line.startswith("[dry-run] ")}


def writes(clusters: Clusters) -> int:
    """POSTs and DELETEs every cluster received."""
    return sum(e.total_calls("POST") + e.total_calls("DELETE") for e, _ in clusters.values())


def test_federated_dry_run_prints_the_actions_of_enabled_clusters_and_writes_nothing(
    gateway: ServerThread, app_interface: QontractServerStandin, clusters: Clusters
) -> None:
    sha = app_interface.latest_sha
    app_interface.reset()
    result = run_cli(COMMAND, env=federated(gateway))
    assert result.returncode == 0, result.stderr
    assert dry_run_lines(result.stdout) == EXPECTED
    assert re.search(r"^task \S+: success, 4 action\(s\)$", result.stdout, re.MULTILINE)
    assert "cluster notoken has no automationToken; skipped" in result.stderr
    assert "legacy" not in result.stdout
    assert writes(clusters) == 0
    asked = [r for r in app_interface.graphql_requests() if b"__schema" not in r.body]
    assert {r.path for r in asked} == {f"/graphqlsha/{sha}"}, "the pinned bundle, via the gateway"
    assert any("OpenShiftNamespacesDesiredState" in r.json()["query"] for r in asked)


def test_real_run_returns_once_accepted_and_the_clusters_then_match(
    gateway: ServerThread, app_interface: QontractServerStandin, clusters: Clusters
) -> None:
    applied = run_cli("--no-dry-run", COMMAND, env=federated(gateway))
    assert applied.returncode == 0, applied.stderr
    accepted = re.fullmatch(
        r"reconcile task (\S+) accepted \((pending|running)\)\n", applied.stdout
    )
    assert accepted, applied.stdout
    response = httpx.post(
        f"{gateway.url}/graphql",
        json={"query": TASK, "variables": {"id": accepted.group(1)}},
        timeout=90,
    )
    task = response.json()["data"]["reconcile_task_v1"]
    assert task["status"] == "success", task
    assert task["typed_result"] == {"status": "success", "errors": [], "applied_count": 4}
    openshift, kubernetes = clusters["appsres01"][0], clusters["kind01"][0]
    assert {"app-a", "app-new", "openshift-extra"} <= set(openshift.state.namespaces)
    assert "app-old" not in openshift.state.namespaces
    assert openshift.state.namespaces["app-new"].requester is not None, "a project request"
    assert "team-x" in kubernetes.state.namespaces
    assert kubernetes.total_calls("POST /api/v1/namespaces") == 1, "team-x is defined twice"

    again = run_cli(COMMAND, env=federated(gateway))
    assert again.returncode == 0, again.stderr
    assert dry_run_lines(again.stdout) == set()
    assert re.search(r"^task \S+: success, 0 action\(s\)$", again.stdout, re.MULTILINE)


def test_reading_qontract_server_directly_gives_the_same_actions(
    gateway: ServerThread, app_interface: QontractServerStandin
) -> None:
    direct = {
        **federated(gateway),
        "QONTRACT_RECONCILE_API_QONTRACT_SERVER__URL": f"{app_interface.url}/graphql",
    }
    result = run_cli(COMMAND, env=direct)
    assert result.returncode == 0, result.stderr
    assert dry_run_lines(result.stdout) == EXPECTED


def test_one_cluster_narrows_the_run_and_an_unknown_one_is_a_usage_error(
    gateway: ServerThread, clusters: Clusters
) -> None:
    narrowed = run_cli(COMMAND, "--cluster-name", "kind01", env=federated(gateway))
    assert narrowed.returncode == 0, narrowed.stderr
    assert dry_run_lines(narrowed.stdout) == {
        "[dry-run] create_namespace kind01/team-x (namespace)"
    }
    unknown = run_cli(COMMAND, "--cluster-name", "nope", env=federated(gateway))
    assert unknown.returncode == 2
    assert "cluster 'nope' has no namespaces this integration manages" in unknown.stderr
    assert "known: appsres01, kind01, notoken" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_a_cluster_the_gateway_does_not_know_fails_the_run_with_its_name(
    gateway: ServerThread, app_interface: QontractServerStandin, clusters: Clusters
) -> None:
    sha = app_interface.load(app_interface_bundle(appsres99=cluster("appsres99")))
    wait_until(
        lambda: httpx.get(f"{gateway.url}/sha256", timeout=10).text.strip() == sha,
        what="the gateway names the new bundle",
    )
    result = run_cli(COMMAND, env=federated(gateway))
    assert result.returncode == 1
    assert "BAD_USER_INPUT" in result.stderr
    assert "unknown openshift clusters: appsres99; configured: appsres01, kind01" in result.stderr
    assert "Traceback" not in result.stderr
    assert sum(emulator.total_calls() for emulator, _ in clusters.values()) == 0


def test_a_cluster_answering_403_is_reported_and_exits_1(
    gateway: ServerThread, clusters: Clusters
) -> None:
    clusters["kind01"][0].state.forbidden.add("list")
    result = run_cli(COMMAND, env=federated(gateway))
    assert result.returncode == 1
    assert dry_run_lines(result.stdout) == {line for line in EXPECTED if "kind01" not in line}
    assert "error: kind01: reading the namespaces failed" in result.stdout
    assert "HTTP 403 Forbidden" in result.stdout
    assert "failed: 1 error(s)" in result.stderr
    assert TOKEN not in result.stdout + result.stderr
