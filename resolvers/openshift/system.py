"""OpenShift (and plain Kubernetes) clusters, declared to the system registry: accounts,
limits, TTLs, the namespaces reconcile mutation and its task kind."""

from collections.abc import Mapping

from gateway.registry import Connection, Sources, System, SystemSchema
from gateway.runtime import Runtime
from gateway.tasks.kinds import TaskFunction
from gateway.upstream import UpstreamClient, UpstreamPolicy
from resolvers.openshift import api
from resolvers.openshift.reconcile import TASK_KIND, OpenShiftNamespacesReconcile
from resolvers.openshift.settings import OpenShiftAccountSettings
from resolvers.openshift.source import OpenShiftSource
from schema.openshift_namespaces_reconcile import OpenShiftNamespacesMutation
from schema.openshift_namespaces_types import TYPES, reconcile_result


def connection(settings: OpenShiftAccountSettings) -> Connection:
    """The cluster's API server, its token, and its TLS check unless `insecure_skip_tls_verify`."""
    return Connection(
        settings.server_url.rstrip("/"),
        settings.token,
        settings.rate_limit,
        UpstreamPolicy(read_timeout=settings.timeout),
        verify=not settings.insecure_skip_tls_verify,
    )


def headers(token: str | None, settings: OpenShiftAccountSettings) -> dict[str, str]:
    """A service account token, as `Bearer`."""
    return api.headers(token or "")


def source(
    settings: OpenShiftAccountSettings, client: UpstreamClient, runtime: Runtime
) -> OpenShiftSource:
    """One cluster's namespaces through the shared cache."""
    return OpenShiftSource(settings.name, api.KubernetesApi(client), runtime.cache, settings.ttl)


def task_kinds(sources: Sources, runtime: Runtime) -> Mapping[str, TaskFunction]:
    """`openshift-namespaces.reconcile`, on the process's shared sources."""
    return {TASK_KIND: OpenShiftNamespacesReconcile(sources, runtime.events.publisher).task}


SYSTEM = System(
    name=api.SYSTEM,
    account_noun="OpenShift cluster",
    settings=OpenShiftAccountSettings,
    source_type=OpenShiftSource,
    source=source,
    headers=headers,
    rate_limit=api.OPENSHIFT,
    tier=api.TIER,
    ttl=OpenShiftSource.default_ttl,
    connection=connection,
    graphql=SystemSchema(
        mutations=(OpenShiftNamespacesMutation,),
        types=TYPES,
        results={TASK_KIND: reconcile_result},
    ),
    task_kinds=task_kinds,
)
