"""Resource leases: one real run per resource, held by task id, expiring unless renewed.

A task's `resource` names one or more leases, separated by spaces (`resource_of`), such as
`slack-usergroups:coreos slack-usergroups:other`; a run takes all of them at once or none.
"""

from collections.abc import Iterable, Sequence

import redis.asyncio as aioredis

from gateway.owned_lease import OwnedLeases
from gateway.redis_keys import TaskKeys, part


def resource_of(names: Iterable[str]) -> str:
    """The resource of a run that needs every lease in `names` (escaped, sorted, no repeats)."""
    return " ".join(sorted({part(name) for name in names}))


def lease_names(resource: str) -> list[str]:
    """The leases a task's `resource` names."""
    return resource.split(" ")


class ResourceLeases:
    """Leases on resources such as `slack-usergroups:coreos`; only the holder renews or frees."""

    def __init__(self, redis: "aioredis.Redis", keys: TaskKeys) -> None:
        self._keys = keys
        self._leases = OwnedLeases(redis)

    def _names(self, resource: str) -> list[str]:
        return [self._keys.lease(name) for name in lease_names(resource)]

    async def acquire(
        self, resource: str, task_id: str, seconds: float, displace: Sequence[str] = ()
    ) -> list[str]:
        """Take (or extend) every lease of `resource` for `task_id`, or none.

        Returns the ids of the tasks in the way (empty on success); leases held by a task in
        `displace` (one known to have ended) are taken over.
        """
        return await self._leases.acquire(self._names(resource), task_id, seconds, displace)

    async def renew(self, resource: str, task_id: str, seconds: float) -> bool:
        """Extend `task_id`'s leases; False when it holds them no longer."""
        return await self._leases.renew(self._names(resource), task_id, seconds)

    async def release(self, resource: str, task_id: str) -> None:
        """Free the leases `task_id` holds."""
        await self._leases.release(self._names(resource), task_id)
