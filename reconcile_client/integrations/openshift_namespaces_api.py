"""openshift-namespaces-api: namespaces from app-interface, created and deleted by the gateway."""

import logging
from collections.abc import Iterable, Sequence

from reconcile_client.errors import ConfigError
from reconcile_client.gql.gateway.openshift_namespaces_task import (
    OpenShiftNamespaceActionV1,
    OpenShiftNamespacesReconcileResultV1,
    ReconcileTaskV1,
)
from reconcile_client.gql.inputs import (
    DesiredCluster,
    DesiredNamespace,
    OpenShiftNamespacesReconcileInput,
)
from reconcile_client.gql.qontract_server.openshift_namespaces_desired_state import NamespaceV1
from reconcile_client.integration import QontractReconcileApiIntegration
from reconcile_client.integrations.app_interface import cluster_disables
from reconcile_client.operations import (
    OPENSHIFT_NAMESPACES_DESIRED_STATE,
    OPENSHIFT_NAMESPACES_RECONCILE,
    OPENSHIFT_NAMESPACES_TASK,
)
from reconcile_client.params import PydanticRunParams
from reconcile_client.task_wait import report_task, wait_for_task

logger = logging.getLogger(__name__)

INTEGRATION = "openshift-namespaces-api"
UPSTREAM_INTEGRATION = "openshift-namespaces"
MANAGING_INTEGRATIONS = frozenset({INTEGRATION, UPSTREAM_INTEGRATION})
"""A cluster disabling either one is left alone, as qontract-reconcile's integration does."""
ACTION_KINDS = {
    "OpenShiftNamespaceCreate_v1": "create_namespace",
    "OpenShiftNamespaceDelete_v1": "delete_namespace",
}


class OpenShiftNamespacesIntegrationParams(PydanticRunParams):
    """Narrow a run to one cluster and/or one namespace name."""

    cluster_name: str | None = None
    namespace_name: str | None = None


def enabled(namespace: NamespaceV1) -> bool:
    """Whether the namespace's cluster lets this integration (and the one it replaces) run."""
    return not cluster_disables(namespace.cluster, MANAGING_INTEGRATIONS)


def selected_namespaces(
    namespaces: Iterable[NamespaceV1], params: OpenShiftNamespacesIntegrationParams
) -> list[NamespaceV1]:
    """The namespaces of clusters not disabling the integration, narrowed by `params`;
    ConfigError when `--cluster-name` or `--namespace-name` names nothing in app-interface."""
    candidates = [namespace for namespace in namespaces if enabled(namespace)]
    if params.cluster_name is not None:
        known = sorted({namespace.cluster.name for namespace in candidates})
        if params.cluster_name not in known:
            raise ConfigError(
                f"cluster {params.cluster_name!r} has no namespaces this integration manages "
                f"(known: {', '.join(known) or 'none'})"
            )
        candidates = [n for n in candidates if n.cluster.name == params.cluster_name]
    if params.namespace_name is not None:
        candidates = [n for n in candidates if n.name == params.namespace_name]
        if not candidates:
            raise ConfigError(
                f"namespace {params.namespace_name!r} is not a namespace in app-interface"
                + (f" on cluster {params.cluster_name!r}" if params.cluster_name else "")
            )
    return candidates


def desired_clusters(namespaces: Sequence[NamespaceV1]) -> list[DesiredCluster]:
    """The namespaces per cluster, in app-interface's order; clusters without an automation
    token are skipped with a warning (no automation may manage them), as qontract-reconcile's
    integration does. Namespaces defined twice are all sent: the gateway acts once on a
    repeated namespace and refuses one that is both kept and deleted."""
    by_cluster: dict[str, list[DesiredNamespace]] = {}
    skipped: set[str] = set()
    for namespace in namespaces:
        cluster = namespace.cluster
        if cluster.automation_token is None:
            if cluster.name not in skipped:
                logger.warning("cluster %s has no automationToken; skipped", cluster.name)
                skipped.add(cluster.name)
            continue
        by_cluster.setdefault(cluster.name, []).append(
            DesiredNamespace(name=namespace.name, delete=bool(namespace.delete))
        )
    return [DesiredCluster(name=name, namespaces=wanted) for name, wanted in by_cluster.items()]


class OpenShiftNamespacesIntegration(
    QontractReconcileApiIntegration[OpenShiftNamespacesIntegrationParams]
):
    """Create and delete OpenShift namespaces through the qontract-gateway."""

    @property
    def name(self) -> str:
        """`openshift-namespaces-api`."""
        return INTEGRATION

    async def desired_state(self) -> list[DesiredCluster]:
        """The selected namespaces per cluster, read from app-interface on the run's bundle
        (through the gateway when it federates qontract-server, else from qontract-server)."""
        data = await self.qontract_server.execute(OPENSHIFT_NAMESPACES_DESIRED_STATE)
        return desired_clusters(selected_namespaces(data.namespaces or [], self.params))

    async def async_run(self, dry_run: bool) -> None:
        """Submit the desired state; a dry run waits for the actions and reports them."""
        clusters = await self.desired_state()
        if not clusters:
            print("nothing to reconcile: no namespaces selected")
            return
        request = OpenShiftNamespacesReconcileInput(dry_run=dry_run, clusters=clusters)
        accepted = await self.gateway.execute(
            OPENSHIFT_NAMESPACES_RECONCILE, {"input": request.model_dump()}
        )
        task = accepted.openshift_namespaces_reconcile_v1
        if not dry_run:
            print(f"reconcile task {task.q_id} accepted ({task.status.value})")
            return
        finished = await wait_for_task(
            self.gateway, OPENSHIFT_NAMESPACES_TASK, task.q_id, lambda data: data.reconcile_task_v1
        )
        report(task.q_id, finished)


def describe(action: OpenShiftNamespaceActionV1) -> str:
    """One readable line for an action: kind, cluster/namespace and the API it goes through."""
    kind = ACTION_KINDS.get(action.typename, action.typename)
    return f"{kind} {action.cluster}/{action.namespace} ({action.api})"


def report(task_id: str, task: ReconcileTaskV1) -> None:
    """Print every action; IntegrationFailed on errors, a failed task or one still pending."""
    result = task.typed_result
    actions = result.actions if isinstance(result, OpenShiftNamespacesReconcileResultV1) else []
    report_task(task_id, task.status.value, task.error, result, [describe(a) for a in actions])
