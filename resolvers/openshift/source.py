"""Cached state of one cluster: whether it is OpenShift, and its namespaces with their phase."""

import asyncio

from pydantic import TypeAdapter
from typing_extensions import TypedDict

from gateway.cache import Cached, CacheKey
from gateway.credentials import CredentialHeaders
from gateway.ratelimit import BucketSpec
from gateway.runtime import Runtime
from gateway.source import AccountSource
from gateway.upstream import UpstreamClient, UpstreamPolicy
from resolvers.openshift.api import OPENSHIFT, SYSTEM, KubernetesApi, upstream_account
from resolvers.openshift.settings import OpenShiftAccountSettings

DEFAULT_TTL = {"namespaces": 600.0}
ALL = "all"
TERMINATING = "Terminating"


class ClusterNamespaces(TypedDict):
    """What is cached of a cluster: OpenShift or plain Kubernetes, and namespace name to phase."""

    openshift: bool
    namespaces: dict[str, str]


NAMESPACES = TypeAdapter(ClusterNamespaces)


class OpenShiftSource(AccountSource[KubernetesApi]):
    """One cluster's namespaces through the shared cache, one list walk per TTL.

    Writes go through here so the cached list never outlives them: after a create or delete
    the cluster's entry is dropped and the next read lists the cluster again.
    """

    system = SYSTEM
    default_ttl = DEFAULT_TTL

    def _key(self) -> CacheKey:
        return self.key("namespaces", ALL)

    async def namespaces(self) -> Cached[ClusterNamespaces]:
        """The cluster's kind and every namespace by name, with its phase."""
        ttl = self.ttl["namespaces"]
        return await self.cache.get_or_fetch(self._key(), self._fetch, ttl, record=NAMESPACES)

    async def create_namespace(self, name: str, openshift: bool) -> None:
        """Create `name` (see KubernetesApi.create_namespace), then forget the cached list."""
        try:
            await self.api.create_namespace(name, openshift)
        finally:
            await self.cache.invalidate(self._key())

    async def delete_namespace(self, name: str, openshift: bool) -> None:
        """Delete `name` (see KubernetesApi.delete_namespace), then forget the cached list."""
        try:
            await self.api.delete_namespace(name, openshift)
        finally:
            await self.cache.invalidate(self._key())

    async def _fetch(self) -> ClusterNamespaces:
        openshift, namespaces = await asyncio.gather(self.api.has_projects(), self.api.namespaces())
        return ClusterNamespaces(
            openshift=openshift,
            namespaces={item.metadata.name: item.status.phase for item in namespaces},
        )


def cluster_source(
    runtime: Runtime, settings: OpenShiftAccountSettings, credential: CredentialHeaders
) -> OpenShiftSource:
    """The source of one configured cluster, on the runtime's Redis, limiter and fetch slots.

    The caller owns `source.api.client` and closes it (`aclose`) at shutdown.
    """
    limit = settings.rate_limit
    spec = (
        OPENSHIFT
        if limit is None
        else BucketSpec.within(limit.requests, limit.per_seconds, burst=limit.burst)
    )
    client = UpstreamClient(
        upstream_account(settings, credential, spec),
        runtime.limiter,
        runtime.upstream_metrics,
        UpstreamPolicy(read_timeout=settings.timeout),
        runtime.fetch_slots,
    )
    return OpenShiftSource(settings.name, KubernetesApi(client), runtime.cache, settings.ttl)
