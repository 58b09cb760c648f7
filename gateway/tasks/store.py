"""Task records in Redis: create, read, claim, renew, finish, requeue; changes are published."""

import datetime as dt
import json
import time
from collections.abc import Mapping
from typing import Any, Literal, cast

import redis.asyncio as aioredis

from gateway.errors import BadUserInput
from gateway.owned_lease import OwnedLeases, ms
from gateway.redis_keys import TaskKeys
from gateway.tasks.record import TaskRecord, TaskStatus, utcnow

Claim = Literal["claimed", "busy", "stale", "finished", "missing"]
Reaped = Literal["alive", "requeued", "failed"]

# KEYS: record, heartbeat. ARGV: attempt, token, heartbeat ms, started_at.
_CLAIM = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if status == 'success' or status == 'failed' then return 'finished' end
if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[1] then return 'stale' end
if not redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return 'busy' end
redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[4])
return 'claimed'
"""

# KEYS: record, heartbeat. ARGV: token, attempt, status, finished_at, result, error.
# The run owns the task while its heartbeat holds its token, or, once the heartbeat has
# expired, until a reaper has moved the task to its next attempt. A finished task's input
# (payload) is dropped: no run needs it again.
_FINISH = """
local holder = redis.call('GET', KEYS[2])
if holder ~= ARGV[1] then
  if holder or redis.call('HGET', KEYS[1], 'status') ~= 'running'
     or redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[2] then
    return 0
  end
end
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'finished_at', ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'result', ARGV[5]) end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[6]) end
redis.call('HDEL', KEYS[1], 'payload')
redis.call('DEL', KEYS[2])
return 1
"""

# KEYS: record, heartbeat. ARGV: max attempts, finished_at, error.
_REQUEUE = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 'alive' end
if redis.call('EXISTS', KEYS[2]) == 1 then return 'alive' end
local attempt = tonumber(redis.call('HGET', KEYS[1], 'attempt'))
if attempt >= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'status', 'failed', 'finished_at', ARGV[2], 'error', ARGV[3])
  redis.call('HDEL', KEYS[1], 'payload')
  return 'failed'
end
redis.call('HSET', KEYS[1], 'status', 'pending', 'attempt', tostring(attempt + 1))
redis.call('HDEL', KEYS[1], 'started_at')
return 'requeued'
"""


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class TaskStore:
    """Reads and changes task records; every status change is published on its channel."""

    def __init__(self, redis: "aioredis.Redis", keys: TaskKeys, record_ttl: float) -> None:
        self.redis = redis
        self.keys = keys
        self._record_ttl = record_ttl
        self._claim = redis.register_script(_CLAIM)
        self._heartbeats = OwnedLeases(redis)
        self._finish = redis.register_script(_FINISH)
        self._requeue = redis.register_script(_REQUEUE)

    async def create(self, record: TaskRecord, payload: str) -> None:
        """Store a new record and its JSON `payload`, expiring after the record TTL."""
        name = self.keys.record(record.id)
        fields: Mapping[Any, Any] = {**record.to_fields(), "payload": payload}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(name, mapping=fields)
            pipe.pexpire(name, ms(self._record_ttl))
            await pipe.execute()
        await self.redis.zadd(self.keys.pending(), {record.id: time.time()})

    async def delete(self, task_id: str) -> None:
        """Forget a record that was never dispatched."""
        await self.redis.delete(self.keys.record(task_id))
        await self.redis.zrem(self.keys.pending(), task_id)

    async def read(self, task_id: str) -> TaskRecord | None:
        """The record, or None when no such task exists (or it expired)."""
        raw = await self.redis.hgetall(self.keys.record(task_id))
        return TaskRecord.from_fields(raw) if raw else None

    async def payload(self, task_id: str) -> dict[str, Any]:
        """The payload the task was submitted with; BAD_USER_INPUT when what is stored is not
        a JSON object (a record written by something other than `create`)."""
        raw = await self.redis.hget(self.keys.record(task_id), "payload")
        try:
            value = json.loads(raw) if raw else {}
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise BadUserInput("the task's stored payload is not a JSON object")
        return value

    async def submitted_at(self, task_id: str) -> float | None:
        """When `task_id` was submitted (epoch seconds), without reading its payload."""
        raw = await self.redis.hget(self.keys.record(task_id), "submitted_at")
        return dt.datetime.fromisoformat(_text(raw)).timestamp() if raw is not None else None

    async def heartbeat_alive(self, task_id: str) -> bool:
        """True while some run holds the task's heartbeat."""
        return bool(await self.redis.exists(self.keys.heartbeat(task_id)))

    async def heartbeat_left(self, task_id: str) -> float:
        """Seconds until the heartbeat expires unless renewed (0 when there is none)."""
        left = int(await self.redis.pttl(self.keys.heartbeat(task_id)))
        return max(left, 0) / 1000

    async def claim(self, task_id: str, attempt: int, token: str, heartbeat: float) -> Claim:
        """Start run `token` of `attempt`: `claimed`, or why not (another run holds it...)."""
        keys = [self.keys.record(task_id), self.keys.heartbeat(task_id)]
        now = utcnow()
        args: list[str | int] = [attempt, token, ms(heartbeat), now.isoformat()]
        outcome = cast(Claim, _text(await self._claim(keys=keys, args=args)))
        if outcome == "claimed":
            await self.redis.zadd(self.keys.running(), {task_id: now.timestamp()})
            await self.redis.zrem(self.keys.pending(), task_id)
            await self.publish(task_id, TaskStatus.RUNNING)
        return outcome

    async def renew(self, task_id: str, token: str, heartbeat: float) -> bool:
        """Extend run `token`'s heartbeat; False when the run no longer holds the task."""
        return await self._heartbeats.renew([self.keys.heartbeat(task_id)], token, heartbeat)

    async def finish(
        self,
        task_id: str,
        token: str,
        attempt: int,
        status: TaskStatus,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        """Record the outcome of run `token`; False when the task was taken from that run."""
        keys = [self.keys.record(task_id), self.keys.heartbeat(task_id)]
        encoded = json.dumps(result, separators=(",", ":")) if result is not None else ""
        args: list[str | int] = [
            token,
            attempt,
            status.value,
            utcnow().isoformat(),
            encoded,
            error or "",
        ]
        done = bool(await self._finish(keys=keys, args=args))
        if done:
            await self.redis.zrem(self.keys.running(), task_id)
            await self.publish(task_id, status)
        return done

    async def requeue_lost(self, task_id: str, max_attempts: int) -> Reaped:
        """A running task whose heartbeat expired goes back to pending, or fails at the limit."""
        keys = [self.keys.record(task_id), self.keys.heartbeat(task_id)]
        error = f"worker lost {max_attempts} times; giving up"
        args: list[str | int] = [max_attempts, utcnow().isoformat(), error]
        outcome = cast(Reaped, _text(await self._requeue(keys=keys, args=args)))
        if outcome != "alive":
            await self.redis.zrem(self.keys.running(), task_id)
            if outcome == "requeued":
                await self.redis.zadd(self.keys.pending(), {task_id: time.time()})
            status = TaskStatus.PENDING if outcome == "requeued" else TaskStatus.FAILED
            await self.publish(task_id, status)
        return outcome

    async def running_ids(self) -> list[str]:
        """Ids of the tasks marked running, oldest first."""
        return [_text(raw) for raw in await self.redis.zrange(self.keys.running(), 0, -1)]

    async def undispatched_ids(self, older_than: float) -> list[str]:
        """Pending tasks last dispatched more than `older_than` seconds ago, oldest first."""
        raws = await self.redis.zrangebyscore(self.keys.pending(), "-inf", time.time() - older_than)
        return [_text(raw) for raw in raws]

    async def mark_dispatched(self, task_id: str) -> None:
        """Note that pending `task_id` was just dispatched (again)."""
        await self.redis.zadd(self.keys.pending(), {task_id: time.time()}, xx=True)

    async def forget_pending(self, task_id: str) -> None:
        """Drop `task_id` from the pending index (it started, ended or expired)."""
        await self.redis.zrem(self.keys.pending(), task_id)

    async def forget_running(self, task_id: str) -> None:
        """Drop `task_id` from the running index (its record expired)."""
        await self.redis.zrem(self.keys.running(), task_id)

    async def publish(self, task_id: str, status: TaskStatus) -> None:
        """Tell waiters that `task_id` changed to `status`."""
        await self.redis.publish(self.keys.changes(task_id), status.value)
