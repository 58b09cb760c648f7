"""The Kubernetes emulator as lightkube (an independent client) sees it: it reads as a cluster."""

from collections.abc import Iterator

import httpx
import pytest
from lightkube import ApiError, Client
from lightkube.config.kubeconfig import KubeConfig
from lightkube.config.models import Cluster, User
from lightkube.generic_resource import create_global_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace

from tests.emulators.kubernetes import KubernetesEmulator, KubernetesState
from tests.support.server_thread import ServerThread

TOKEN = "sha256~conformance-token"
Project = create_global_resource("project.openshift.io", "v1", "Project", "projects")
Served = tuple[KubernetesEmulator, Client, str]
ProjectRequest = create_global_resource(
    "project.openshift.io", "v1", "ProjectRequest", "projectrequests"
)


def _client(url: str, token: str = TOKEN) -> Client:
    config = KubeConfig.from_one(cluster=Cluster(server=url), user=User(token=token))
    return Client(config=config, timeout=httpx.Timeout(10.0))


@pytest.fixture
def cluster() -> Iterator[Served]:
    emulator = KubernetesEmulator(KubernetesState(token=TOKEN))
    for name in ("default", "kube-system", "app-a", "app-b", "app-c"):
        emulator.state.add(name)
    with ServerThread(emulator.app) as server:
        client = _client(server.url)
        yield emulator, client, server.url
        client.close()


def test_list_walks_pages_with_limit_and_continue(
    cluster: Served,
) -> None:
    emulator, client, _ = cluster
    names = [ns.metadata.name for ns in client.list(Namespace, chunk_size=2) if ns.metadata]
    assert names == ["app-a", "app-b", "app-c", "default", "kube-system"]
    assert emulator.total_calls("GET /api/v1/namespaces") == 3


def test_create_then_get_shows_an_active_namespace_with_a_resource_version(
    cluster: Served,
) -> None:
    _, client, _ = cluster
    created = client.create(Namespace(metadata=ObjectMeta(name="new-app")))
    fetched = client.get(Namespace, name="new-app")
    assert created.metadata is not None
    assert fetched.metadata is not None
    assert fetched.metadata.name == "new-app"
    assert fetched.metadata.resourceVersion == created.metadata.resourceVersion
    assert fetched.status is not None
    assert fetched.status.phase == "Active"


def test_creating_an_existing_namespace_is_409_already_exists(
    cluster: Served,
) -> None:
    _, client, _ = cluster
    with pytest.raises(ApiError) as refused:
        client.create(Namespace(metadata=ObjectMeta(name="app-a")))
    assert refused.value.status.code == 409
    assert refused.value.status.reason == "AlreadyExists"
    assert refused.value.status.message == 'namespaces "app-a" already exists'


def test_an_invalid_name_is_422_invalid(cluster: Served) -> None:
    _, client, _ = cluster
    with pytest.raises(ApiError) as refused:
        client.create(Namespace(metadata=ObjectMeta(name="Bad_Name")))
    assert (refused.value.status.code, refused.value.status.reason) == (422, "Invalid")


def test_delete_then_get_is_404_not_found(cluster: Served) -> None:
    _, client, _ = cluster
    client.delete(Namespace, name="app-b")
    with pytest.raises(ApiError) as missing:
        client.get(Namespace, name="app-b")
    assert missing.value.status.code == 404
    assert missing.value.status.reason == "NotFound"
    assert missing.value.status.message == 'namespaces "app-b" not found'
    with pytest.raises(ApiError) as again:
        client.delete(Namespace, name="app-b")
    assert again.value.status.code == 404


def test_a_wrong_token_is_401_and_a_forbidden_verb_403(
    cluster: Served,
) -> None:
    emulator, client, url = cluster
    stranger = _client(url, token="sha256~wrong")
    with pytest.raises(ApiError) as unauthorized:
        list(stranger.list(Namespace))
    assert (unauthorized.value.status.code, unauthorized.value.status.reason) == (
        401,
        "Unauthorized",
    )
    emulator.state.forbidden.add("list")
    with pytest.raises(ApiError) as forbidden:
        list(client.list(Namespace))
    assert (forbidden.value.status.code, forbidden.value.status.reason) == (403, "Forbidden")
    assert "cannot list resource" in (forbidden.value.status.message or "")


def test_openshift_mode_serves_projects_and_project_requests(
    cluster: Served,
) -> None:
    emulator, client, _ = cluster
    client.create(ProjectRequest(metadata=ObjectMeta(name="requested")))
    assert client.get(Namespace, name="requested").metadata is not None
    projects = [p.metadata.name for p in client.list(Project, chunk_size=1) if p.metadata]
    assert "requested" in projects
    assert "app-a" in projects
    with pytest.raises(ApiError) as exists:
        client.create(ProjectRequest(metadata=ObjectMeta(name="requested")))
    assert (exists.value.status.code, exists.value.status.reason) == (409, "AlreadyExists")
    client.delete(Project, name="requested")
    assert "requested" not in emulator.state.namespaces


def test_plain_kubernetes_mode_does_not_know_projects() -> None:
    emulator = KubernetesEmulator(KubernetesState(mode="kubernetes", token=TOKEN))
    emulator.state.add("default")
    with ServerThread(emulator.app) as server:
        client = _client(server.url)
        with pytest.raises(ApiError) as unknown:
            list(client.list(Project, chunk_size=1))
        assert (unknown.value.status.code, unknown.value.status.reason) == (404, "NotFound")
        with pytest.raises(ApiError):
            client.create(ProjectRequest(metadata=ObjectMeta(name="requested")))
        assert [ns.metadata.name for ns in client.list(Namespace) if ns.metadata] == ["default"]
        client.close()
