"""Resource leases: one real run per resource, held by task id, expiring unless renewed."""

import redis.asyncio as aioredis

from gateway.tasks.keys import TaskKeys

# KEYS: lease. ARGV: task id, ms. Returns the holder after the call.
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if not holder or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
return holder
"""

# KEYS: lease. ARGV: expected holder, new holder, ms.
_REPLACE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""

# KEYS: lease. ARGV: task id, ms.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: lease. ARGV: task id.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class ResourceLeases:
    """Leases on resource keys such as `slack:coreos`; only the holder renews or releases."""

    def __init__(self, redis: "aioredis.Redis", keys: TaskKeys) -> None:
        self._keys = keys
        self._acquire = redis.register_script(_ACQUIRE)
        self._replace = redis.register_script(_REPLACE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def acquire(self, resource: str, task_id: str, seconds: float) -> str:
        """Take or extend the lease for `task_id`; returns the holder (`task_id` on success)."""
        raw = await self._acquire(keys=[self._keys.lease(resource)], args=[task_id, _ms(seconds)])
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    async def replace(self, resource: str, stale: str, task_id: str, seconds: float) -> bool:
        """Hand the lease from `stale` (a finished or vanished task) to `task_id`."""
        args: list[str | int] = [stale, task_id, _ms(seconds)]
        return bool(await self._replace(keys=[self._keys.lease(resource)], args=args))

    async def renew(self, resource: str, task_id: str, seconds: float) -> bool:
        """Extend `task_id`'s lease; False when it holds it no longer."""
        args: list[str | int] = [task_id, _ms(seconds)]
        return bool(await self._renew(keys=[self._keys.lease(resource)], args=args))

    async def release(self, resource: str, task_id: str) -> None:
        """Free the lease if `task_id` holds it."""
        await self._release(keys=[self._keys.lease(resource)], args=[task_id])


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
