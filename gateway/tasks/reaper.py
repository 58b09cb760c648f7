"""Finds lost tasks: running ones whose worker died (requeued, or failed at last), and pending
ones that no worker picked up (dispatched again)."""

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from redis.exceptions import RedisError

from gateway.settings import TaskSettings
from gateway.tasks.lease import ResourceLeases
from gateway.tasks.record import TaskRecord, TaskStatus
from gateway.tasks.store import TaskStore

log = structlog.get_logger("gateway.tasks")

Dispatch = Callable[[TaskRecord], Awaitable[None]]
Observe = Callable[[], Awaitable[None]]


class Reaper:
    """Whoever notices a lost run (a reader, a waiter, the periodic sweep) calls `reap`."""

    def __init__(
        self,
        store: TaskStore,
        leases: ResourceLeases,
        dispatch: Dispatch,
        settings: TaskSettings,
    ) -> None:
        self._store = store
        self._leases = leases
        self._dispatch = dispatch
        self._settings = settings

    async def reap(self, record: TaskRecord) -> TaskRecord:
        """`record` as it is after dealing with a lost run (unchanged when its run is alive)."""
        if record.status != TaskStatus.RUNNING or await self._store.heartbeat_alive(record.id):
            return record
        outcome = await self._store.requeue_lost(record.id, self._settings.max_attempts)
        current = await self._store.read(record.id) or record
        if outcome == "alive":
            return current
        log.warning("task worker lost", task_id=record.id, outcome=outcome, attempt=record.attempt)
        real = current.resource is not None and not current.dry_run
        if outcome == "requeued":
            if current.resource is not None and real:
                await self._leases.acquire(current.resource, current.id, self._settings.record_ttl)
            await self._dispatch(current)
        elif current.resource is not None and real:
            await self._leases.release(current.resource, current.id)
        return current

    async def sweep(self) -> None:
        """Reap every task in the running index; dispatch again what nobody picked up."""
        for task_id in await self._store.running_ids():
            record = await self._store.read(task_id)
            if record is None:
                await self._store.forget_running(task_id)
            else:
                await self.reap(record)
        await self.redispatch()

    async def redispatch(self) -> None:
        """Dispatch again pending tasks not started within `redispatch_after` seconds.

        A task queued in the memory of a process that died (`serve --role all`) would stay
        pending until its record expired; the claim keeps a task to one run however often it
        is delivered.
        """
        for task_id in await self._store.undispatched_ids(self._settings.redispatch_after):
            record = await self._store.read(task_id)
            if record is None or record.status != TaskStatus.PENDING:
                await self._store.forget_pending(task_id)
                continue
            log.warning("pending task not started; dispatching it again", task_id=task_id)
            await self._store.mark_dispatched(task_id)
            await self._dispatch(record)

    async def sweep_periodically(self, observe: Observe) -> None:
        """Sweep every half heartbeat timeout, forever; then `observe` (task and event backlog)."""
        while True:
            await asyncio.sleep(self._settings.heartbeat_timeout / 2)
            try:
                await self.sweep()
                await observe()
            except (RedisError, OSError) as error:
                log.warning("task sweep failed; retrying", error=repr(error))
