"""What a caller may store as task input: one input's size and shape, and its total per day."""

import hashlib
from collections.abc import Collection
from typing import Any

import redis.asyncio as aioredis

from gateway.errors import BadUserInput, LimitExceeded
from gateway.redis_keys import TaskKeys
from gateway.settings import TaskSettings

# KEYS: the caller's submissions (sorted set of "task_id:bytes" by submission time, ms).
# ARGV: window ms, task id, bytes, max tasks, max bytes.
# Returns {1} when admitted, else {0, what, ms until the oldest submission leaves the window}.
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local retry = 0
if #entries > 0 then retry = tonumber(entries[2]) + window - now end
if #entries / 2 >= tonumber(ARGV[4]) then return {0, 'tasks', retry} end
local total = tonumber(ARGV[3])
for i = 1, #entries, 2 do
  total = total + tonumber(string.match(entries[i], ':(%d+)$'))
end
if total > tonumber(ARGV[5]) then return {0, 'bytes', retry} end
redis.call('ZADD', KEYS[1], now, ARGV[2] .. ':' .. ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return {1}
"""


def check_input_shape(
    payload: Any, settings: TaskSettings, self_bounded: Collection[str] = ()
) -> None:
    """BAD_USER_INPUT naming the first list or string in `payload` longer than the settings allow.

    Strings under a key in `self_bounded` (file contents) are left to the kind's own bound;
    the input's total size still holds them. Linear in the size of `payload`; the path in the
    message is that of the input.
    """
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), payload)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            stack.extend(((*path, name), item) for name, item in value.items())
        elif isinstance(value, list):
            if len(value) > settings.max_input_list_length:
                raise BadUserInput(
                    f"input.{_dotted(path)} has {len(value)} items; at most "
                    f"{settings.max_input_list_length} (tasks.max_input_list_length)"
                )
            stack.extend(((*path, index), item) for index, item in enumerate(value))
        elif (
            isinstance(value, str)
            and len(value) > settings.max_input_string_length
            and not (path and path[-1] in self_bounded)
        ):
            raise BadUserInput(
                f"input.{_dotted(path)} is {len(value)} characters long; at most "
                f"{settings.max_input_string_length} (tasks.max_input_string_length)"
            )


def _dotted(path: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in path)


class CallerQuota:
    """Bounds the task input each caller has stored within one record lifetime (tasks, bytes)."""

    def __init__(self, redis: "aioredis.Redis", keys: TaskKeys, settings: TaskSettings) -> None:
        self._keys = keys
        self._settings = settings
        self._admit = redis.register_script(_ADMIT)

    async def admit(self, caller: str, task_id: str, input_bytes: int) -> None:
        """Count `task_id`'s input against `caller`, or raise LIMIT_EXCEEDED (BAD_USER_INPUT if
        the one input is larger than allowed)."""
        settings = self._settings
        if input_bytes > settings.max_input_bytes:
            raise BadUserInput(
                f"the task input is {input_bytes} bytes; at most {settings.max_input_bytes} "
                "(tasks.max_input_bytes)"
            )
        digest = hashlib.sha256(caller.encode()).hexdigest()[:32]
        window_ms = max(1, int(settings.record_ttl * 1000))
        args: list[str | int] = [
            window_ms,
            task_id,
            input_bytes,
            settings.caller_tasks,
            settings.caller_input_bytes,
        ]
        outcome = await self._admit(keys=[self._keys.caller_inputs(digest)], args=args)
        if int(outcome[0]) == 1:
            return
        what = outcome[1].decode() if isinstance(outcome[1], bytes) else str(outcome[1])
        retry_after = max(1, int(outcome[2]) // 1000)
        if what == "tasks":
            name, bound = "tasks.caller_tasks", f"{settings.caller_tasks} tasks"
        else:
            name, bound = "tasks.caller_input_bytes", f"{settings.caller_input_bytes} input bytes"
        raise LimitExceeded(
            f"this caller stored {bound} within the last {settings.record_ttl:g} s ({name}); "
            f"retry in {retry_after} s",
            limit=name,
            retry_after=retry_after,
        )
