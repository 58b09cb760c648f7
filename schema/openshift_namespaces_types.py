"""Typed results of `openshift-namespaces.reconcile` tasks, derived from the service's pydantic
models (resolvers/openshift/reconcile_models.py): the actions a run computed or applied."""

from typing import Any

import strawberry
from strawberry.experimental import pydantic

from resolvers.openshift.reconcile_models import (
    CreateNamespace,
    DeleteNamespace,
    NamespaceTarget,
    ReconcileResult,
)
from schema.tasks import ReconcileTaskResult


@pydantic.interface(model=NamespaceTarget, name="OpenShiftNamespaceAction_v1")
class OpenShiftNamespaceAction:
    """One change to one namespace of one configured cluster."""

    cluster: strawberry.auto
    namespace: strawberry.auto
    api: str = strawberry.field(
        description="`project` (OpenShift's project API) or `namespace` (`/api/v1/namespaces`)"
    )


# The ignores: Strawberry's mypy plugin types `from_pydantic` by each class's own model.
@pydantic.type(model=CreateNamespace, name="OpenShiftNamespaceCreate_v1")
class OpenShiftNamespaceCreate(OpenShiftNamespaceAction):  # type: ignore[override]
    """Create the namespace (a ProjectRequest on OpenShift, not a reserved name)."""

    namespace: strawberry.auto


@pydantic.type(model=DeleteNamespace, name="OpenShiftNamespaceDelete_v1")
class OpenShiftNamespaceDelete(OpenShiftNamespaceAction):  # type: ignore[override]
    """Delete the namespace (its project on OpenShift, not a reserved name)."""

    namespace: strawberry.auto


@pydantic.type(model=ReconcileResult, name="OpenShiftNamespacesReconcileResult_v1")
class OpenShiftNamespacesReconcileResult(ReconcileTaskResult):
    """What a finished run did: `failed` iff `errors` is not empty."""

    status: str
    errors: strawberry.auto
    actions: list[OpenShiftNamespaceAction]
    applied_count: strawberry.auto


def reconcile_result(result: dict[str, Any]) -> OpenShiftNamespacesReconcileResult:
    """The typed view of an `openshift-namespaces.reconcile` task's JSON result."""
    return OpenShiftNamespacesReconcileResult.from_pydantic(ReconcileResult.model_validate(result))


TYPES = (OpenShiftNamespaceCreate, OpenShiftNamespaceDelete, OpenShiftNamespacesReconcileResult)
"""The types reached only through interfaces, for `Schema(types=...)`."""
