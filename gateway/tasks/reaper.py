"""Finds running tasks whose worker was lost (heartbeat expired): requeued, or failed at last."""

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
        """Reap every task in the running index."""
        for task_id in await self._store.running_ids():
            record = await self._store.read(task_id)
            if record is None:
                await self._store.forget_running(task_id)
            else:
                await self.reap(record)

    async def sweep_periodically(self) -> None:
        """Sweep every half heartbeat timeout, forever."""
        while True:
            await asyncio.sleep(self._settings.heartbeat_timeout / 2)
            try:
                await self.sweep()
            except (RedisError, OSError):
                log.warning("task sweep failed; retrying", exc_info=True)
