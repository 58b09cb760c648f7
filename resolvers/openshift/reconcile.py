"""The openshift-namespaces reconcile: a pure diff per cluster, and applying it to many clusters."""

import asyncio
from collections.abc import Mapping, Sequence

from gateway.errors import BadUserInput, GatewayError, named, shown
from gateway.events import EventPublisher
from gateway.events.action_log import ActionLog
from gateway.registry import Sources
from gateway.tasks.reconcile import ReconcileKind, refuse_repeated
from resolvers.openshift.api import NAMESPACE, uses_project_api
from resolvers.openshift.reconcile_models import (
    ClusterRequest,
    CreateNamespace,
    DeleteNamespace,
    NamespaceAction,
    NamespaceError,
    ReconcileRequest,
    ReconcileResult,
)
from resolvers.openshift.source import TERMINATING, ClusterNamespaces, OpenShiftSource

TASK_KIND = "openshift-namespaces.reconcile"
EVENT_PREFIX = "openshift-namespaces"
CONCURRENT_CLUSTERS = 8
PROTECTED = frozenset({"default", "kube-system", "kube-public", "kube-node-lease", "openshift"})
"""Namespaces a cluster cannot run without: never deleted, whatever the request says."""

ClusterOutcome = tuple[list[NamespaceAction], int, list[NamespaceError]]


def compute_actions(
    desired: ClusterRequest, current: ClusterNamespaces
) -> tuple[list[NamespaceAction], list[NamespaceError]]:
    """The actions that bring one cluster to `desired`, and the namespaces refused, as errors.

    A malformed name, a name listed both to keep and to delete, a protected namespace to delete
    and a namespace to keep that is still terminating are refused; the rest is one pass over
    the request with set lookups, so its cost is linear in the request and the cluster.
    """
    cluster = desired.name
    wanted: dict[str, bool] = {}
    conflicting: set[str] = set()
    errors: list[NamespaceError] = []
    for namespace in desired.namespaces:
        problem = NAMESPACE.problem(namespace.name)
        if problem is not None:
            errors.append(NamespaceError(cluster, shown(namespace.name), problem.message))
        elif wanted.setdefault(namespace.name, namespace.delete) != namespace.delete:
            conflicting.add(namespace.name)
    actions: list[NamespaceAction] = []
    phases = current["namespaces"]
    for name, delete in wanted.items():
        api = "project" if uses_project_api(name, current["openshift"]) else "namespace"
        phase = phases.get(name)
        if name in conflicting:
            errors.append(NamespaceError(cluster, name, "listed both to keep and to delete"))
        elif delete and name in PROTECTED:
            errors.append(NamespaceError(cluster, name, "refused: a system namespace"))
        elif delete and phase is not None and phase != TERMINATING:
            actions.append(DeleteNamespace(cluster=cluster, namespace=name, api=api))
        elif not delete and phase is None:
            actions.append(CreateNamespace(cluster=cluster, namespace=name, api=api))
        elif not delete and phase == TERMINATING:
            errors.append(
                NamespaceError(cluster, name, "still terminating; it is created once it is gone")
            )
    return actions, errors


class ClusterWriter:
    """Applies one cluster's actions through that cluster's own source only."""

    def __init__(self, source: OpenShiftSource, openshift: bool, events: "NamespaceEvents") -> None:
        self.source = source
        self.openshift = openshift
        self.events = events

    async def apply(self, actions: Sequence[NamespaceAction]) -> tuple[int, list[NamespaceError]]:
        """Apply `actions` in order; how many were applied, and one error per failed action."""
        applied = 0
        errors: list[NamespaceError] = []
        for action in actions:
            try:
                if isinstance(action, CreateNamespace):
                    await self.source.create_namespace(action.namespace, self.openshift)
                else:
                    await self.source.delete_namespace(action.namespace, self.openshift)
            except GatewayError as error:
                failed = NamespaceError(
                    action.cluster, action.namespace, f"{action.kind} failed: {error.message}"
                )
                errors.append(failed)
                await self.events.error(failed)
                continue
            applied += 1
            await self.events.publish(action.kind, action.model_dump(mode="json"))
        return applied, errors


class NamespaceEvents(ActionLog):
    """`openshift-namespaces.<action>` and `.error` events of one run; `origin` (task and
    request ids) joins every payload."""

    def __init__(self, publisher: EventPublisher, origin: Mapping[str, str] | None = None) -> None:
        super().__init__(publisher, EVENT_PREFIX, origin)

    async def error(self, error: NamespaceError) -> None:
        """Publish one `openshift-namespaces.error`."""
        payload = {"cluster": error.cluster, "namespace": error.namespace, "error": str(error)}
        await self.publish("error", payload)


def check_clusters(request: ReconcileRequest, configured: Mapping[str, object]) -> None:
    """BAD_USER_INPUT for clusters listed twice or not configured (`configured` by name)."""
    names = [cluster.name for cluster in request.clusters]
    refuse_repeated("clusters", names)
    unknown = sorted(set(names) - set(configured))
    if unknown:
        raise BadUserInput(
            f"unknown openshift clusters: {named(unknown)}; "
            f"configured: {', '.join(sorted(configured)) or 'none'}"
        )


async def reconcile(
    request: ReconcileRequest,
    sources: Sources,
    publisher: EventPublisher,
    origin: Mapping[str, str] | None = None,
    concurrency: int = CONCURRENT_CLUSTERS,
) -> ReconcileResult:
    """Reconcile every cluster of `request`, at most `concurrency` at once, each through its
    own source; failed iff errors.

    Unknown or repeated cluster names are BAD_USER_INPUT before anything is read or written;
    `origin` (task and request ids) joins every event's payload.
    """
    clusters = sources.of(OpenShiftSource)
    check_clusters(request, clusters)
    events = NamespaceEvents(publisher, origin)
    slots = asyncio.Semaphore(concurrency)

    async def bounded(cluster: ClusterRequest) -> ClusterOutcome:
        async with slots:
            return await _reconcile_cluster(
                cluster, clusters[cluster.name], request.dry_run, events
            )

    outcomes = await asyncio.gather(*(bounded(cluster) for cluster in request.clusters))
    return ReconcileResult.joined(outcomes)


async def _reconcile_cluster(
    cluster: ClusterRequest, source: OpenShiftSource, dry_run: bool, events: NamespaceEvents
) -> ClusterOutcome:
    """One cluster's actions, how many were applied and its errors; a real run reads the
    cluster afresh, a dry run may use the cached copy."""
    try:
        read = source.namespaces if dry_run else source.refresh_namespaces
        current = (await read()).value
    except GatewayError as error:
        failed = NamespaceError(cluster.name, "", f"reading the namespaces failed: {error.message}")
        if not dry_run:
            await events.error(failed)
        return [], 0, [failed]
    actions, errors = compute_actions(cluster, current)
    if dry_run:
        return actions, 0, errors
    for refused in errors:
        await events.error(refused)
    applied, apply_errors = await ClusterWriter(source, current["openshift"], events).apply(actions)
    return actions, applied, errors + apply_errors


class OpenShiftNamespacesReconcile(ReconcileKind[ReconcileRequest]):
    """The `openshift-namespaces.reconcile` task: a JSON request in, the JSON result out."""

    request_model = ReconcileRequest

    async def run(
        self, request: ReconcileRequest, origin: Mapping[str, str] | None
    ) -> ReconcileResult:
        """Reconcile `request` on the process's sources."""
        return await reconcile(request, self.sources, self.publisher, origin)
