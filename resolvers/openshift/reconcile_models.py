"""What the openshift-namespaces reconcile takes and returns: the request, actions, the result."""

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.settings import AccountName
from gateway.tasks.lease import resource_of
from gateway.tasks.reconcile import BaseReconcileRequest, BaseReconcileResult

MAX_CLUSTERS = 500
MAX_NAMESPACES_PER_CLUSTER = 20_000
MAX_NAMESPACES = 50_000
RESOURCE_PREFIX = "openshift-namespaces:"


class DesiredNamespace(BaseModel):
    """A namespace that must exist, or (with `delete`) must not."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=253)
    delete: bool = False


class ClusterRequest(BaseModel):
    """One configured cluster, by name, and its desired namespaces."""

    model_config = ConfigDict(extra="forbid")

    name: AccountName
    namespaces: list[DesiredNamespace] = Field(
        default_factory=list, max_length=MAX_NAMESPACES_PER_CLUSTER
    )


class ReconcileRequest(BaseReconcileRequest):
    """The namespaces each cluster should have; a dry run (the default) only computes the
    actions."""

    clusters: list[ClusterRequest] = Field(default_factory=list, max_length=MAX_CLUSTERS)

    @model_validator(mode="after")
    def _bounded(self) -> "ReconcileRequest":
        total = sum(len(cluster.namespaces) for cluster in self.clusters)
        if total > MAX_NAMESPACES:
            raise ValueError(f"at most {MAX_NAMESPACES} namespaces in all, not {total}")
        return self

    @property
    def resource(self) -> str:
        """What two real runs must not change at once: one lease per cluster."""
        return resource_of(RESOURCE_PREFIX + cluster.name for cluster in self.clusters)


NamespaceApi = Literal["project", "namespace"]
"""How a namespace is created or deleted: as an OpenShift project, or as a plain namespace."""


class NamespaceTarget(BaseModel):
    """What every namespace action names: the cluster, the namespace and the API it goes
    through; system namespaces are never deleted."""

    cluster: str = Field(description="the configured cluster's name")
    namespace: str
    api: NamespaceApi = Field(
        description="`project` (OpenShift's project API) or `namespace` (`/api/v1/namespaces`)"
    )


class CreateNamespace(NamespaceTarget):
    """Create a missing namespace (a ProjectRequest on OpenShift, not a reserved name)."""

    kind: Literal["create_namespace"] = "create_namespace"


class DeleteNamespace(NamespaceTarget):
    """Delete a namespace that must not exist (its project on OpenShift, not a reserved name)."""

    kind: Literal["delete_namespace"] = "delete_namespace"


NamespaceAction = Annotated[CreateNamespace | DeleteNamespace, Field(discriminator="kind")]


@dataclass(frozen=True)
class NamespaceError:
    """Why one namespace (or, with no namespace, a whole cluster) was not reconciled."""

    cluster: str
    namespace: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.cluster}/{self.namespace}" if self.namespace else self.cluster
        return f"{where}: {self.reason}"


class ReconcileResult(BaseReconcileResult):
    """The outcome of a run (see `BaseReconcileResult`)."""

    actions: list[NamespaceAction] = Field(default_factory=list)
    errors: list[str] = Field(
        default_factory=list, description='"cluster/namespace: what failed" (or "cluster: ...")'
    )
