"""`openshift_namespaces_reconcile_v1`: desired namespaces per cluster in, a reconcile task out."""

import strawberry
from pydantic import ValidationError
from strawberry.types import Info

from gateway.errors import BadUserInput
from gateway.settings import validation_problems
from resolvers.openshift.reconcile import TASK_KIND, check_clusters
from resolvers.openshift.reconcile_models import ReconcileRequest
from resolvers.openshift.source import OpenShiftSource
from schema.context import RequestContext
from schema.permissions import scope
from schema.tasks import READ_TASK_SCOPES, ReconcileTask, submit_reconcile


@strawberry.input(name="OpenShiftNamespaceInput_v1")
class NamespaceInput:
    """A namespace that must exist, or (with `delete`) must not."""

    name: str
    delete: bool = False


@strawberry.input(name="OpenShiftNamespacesClusterInput_v1")
class ClusterInput:
    """A configured cluster by name (its URL and token live in the gateway) and its namespaces."""

    name: str
    namespaces: list[NamespaceInput]


@strawberry.input(name="OpenShiftNamespacesReconcileInput_v1")
class ReconcileInput:
    """What the namespaces should be; a dry run (the default) only computes the actions."""

    dry_run: bool = True
    clusters: list[ClusterInput]


async def openshift_namespaces_reconcile(
    info: Info[RequestContext, None], input: ReconcileInput
) -> ReconcileTask:
    """Submit the run and return its task at once; real runs of the same clusters dedup.

    Clusters are configured accounts: an unknown or repeated name is BAD_USER_INPUT here,
    before any task exists. The field admits either reconcile scope; a real run needs
    `reconcile:apply` as well.
    """
    try:
        request = ReconcileRequest.model_validate(strawberry.asdict(input))
    except ValidationError as error:
        raise BadUserInput(f"invalid reconcile input: {validation_problems(error)}") from None
    check_clusters(request, info.context.sources.of(OpenShiftSource))
    return await submit_reconcile(info, TASK_KIND, request)


@strawberry.type
class OpenShiftNamespacesMutation:
    """OpenShift namespaces reconcile (joined into Mutation by the system registry)."""

    openshift_namespaces_reconcile_v1: ReconcileTask = strawberry.mutation(
        resolver=openshift_namespaces_reconcile,
        extensions=scope(*READ_TASK_SCOPES),
        description="Create and delete namespaces of configured clusters to match `input`; "
        "returns the task at once (read it with `reconcile_task_v1`). Real runs need "
        "`reconcile:apply`, dry runs `reconcile:dry-run`; a real run for clusters that "
        "already have one pending or running returns that task",
    )
