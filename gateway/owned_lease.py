"""Owned leases in Redis: take with a token, renew and release only while the token holds them.

The one copy of the owned-lock scripts, used by the cache's single-flight lock, task
heartbeats and the reconcile resource leases. A call may name several keys; they must share a
hash tag (see `gateway.redis_keys`), and the script takes, renews or frees all of them at once.
"""

from collections.abc import Sequence

import redis.asyncio as aioredis

# KEYS: leases (one slot). ARGV: token, ms, then holders that may be displaced (ended runs).
# Takes every lease, or none: returns the holders in the way (empty when all were taken).
_ACQUIRE = """
local blocking = {}
for _, name in ipairs(KEYS) do
  local holder = redis.call('GET', name)
  if holder and holder ~= ARGV[1] then
    local displaceable = false
    for i = 3, #ARGV do
      if holder == ARGV[i] then displaceable = true end
    end
    if not displaceable then table.insert(blocking, holder) end
  end
end
if #blocking == 0 then
  for _, name in ipairs(KEYS) do redis.call('SET', name, ARGV[1], 'PX', ARGV[2]) end
end
return blocking
"""

# KEYS: a value, then leases (one slot). ARGV: as _ACQUIRE. {1, value} when the value is set;
# else _ACQUIRE on the leases: {0, holders in the way}. One round trip for "read, else fetch".
_READ_OR_ACQUIRE = (
    "local value = redis.call('GET', table.remove(KEYS, 1))\n"
    "if value then return {1, value} end\n"
    f"local blocking = (function()\n{_ACQUIRE}\nend)()\n"
    "return {0, blocking}\n"
)
# KEYS: leases. ARGV: token, ms. Extends all of them only while the token holds every one.
_RENEW = """
for _, name in ipairs(KEYS) do
  if redis.call('GET', name) ~= ARGV[1] then return 0 end
end
for _, name in ipairs(KEYS) do redis.call('PEXPIRE', name, ARGV[2]) end
return 1
"""

# KEYS: leases. ARGV: token. Frees the leases the token still holds.
_RELEASE = """
local freed = 0
for _, name in ipairs(KEYS) do
  if redis.call('GET', name) == ARGV[1] then freed = freed + redis.call('DEL', name) end
end
return freed
"""


class OwnedLeases:
    """Acquire, renew and release leases held by a token (a random secret or a task id)."""

    def __init__(self, redis: "aioredis.Redis") -> None:
        self._acquire = redis.register_script(_ACQUIRE)
        self._read_or_acquire = redis.register_script(_READ_OR_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def acquire(
        self, names: Sequence[str], token: str, seconds: float, displace: Sequence[str] = ()
    ) -> list[str]:
        """Take (or extend) every lease in `names` for `token`, or none of them.

        Returns the holders in the way, empty on success; a lease held by one of `displace`
        (a run known to have ended) is taken over.
        """
        args: list[str | int] = [token, ms(seconds), *displace]
        raw = await self._acquire(keys=list(names), args=args)
        return list(dict.fromkeys(_text(holder) for holder in raw))

    async def read_or_acquire(
        self, value: str, names: Sequence[str], token: str, seconds: float
    ) -> tuple[bytes | None, bool]:
        """(`value`'s content, False) when it is set; else (None, whether every lease in `names`
        was taken for `token`), in one round trip (`value` shares the leases' slot)."""
        found, result = await self._read_or_acquire(keys=[value, *names], args=[token, ms(seconds)])
        if found:
            return (result if isinstance(result, bytes) else str(result).encode()), False
        return None, not result

    async def renew(self, names: Sequence[str], token: str, seconds: float) -> bool:
        """Extend the leases while `token` holds all of them; False when it lost any."""
        return bool(await self._renew(keys=list(names), args=[token, ms(seconds)]))

    async def release(self, names: Sequence[str], token: str) -> None:
        """Free the leases `token` still holds."""
        await self._release(keys=list(names), args=[token])


def ms(seconds: float) -> int:
    """`seconds` in whole milliseconds, at least 1 (a Redis PX/PEXPIRE argument)."""
    return max(1, int(seconds * 1000))


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)
