"""Cached state of one cluster: whether it is OpenShift, and its namespaces with their phase."""

import asyncio

from pydantic import TypeAdapter
from typing_extensions import TypedDict

from gateway.cache import Cached, CacheKey, CacheLookup
from gateway.source import AccountSource
from resolvers.openshift.api import SYSTEM, KubernetesApi

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

    async def refresh_namespaces(self) -> Cached[ClusterNamespaces]:
        """Read the cluster now and replace the cached copy: a real run decides on what the
        cluster holds, not on a copy up to one TTL old (a rerun after a lost worker sees
        what the lost run already changed)."""
        current = await self._fetch()
        await self.cache.put(self._key(), current, self.ttl["namespaces"], record=NAMESPACES)
        return Cached(current, CacheLookup(SYSTEM, self.cache.key_name(self._key()), "miss", 0.0))

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
