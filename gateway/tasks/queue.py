"""The API side of tasks: submit (deduplicated per resource), read, wait for and watch them."""

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Collection
from typing import Any

import structlog

from gateway import tracing
from gateway.errors import Conflict, NotFound, redis_unavailable, shown
from gateway.redis_keys import TaskKeys
from gateway.runtime import Runtime
from gateway.settings import TaskSettings
from gateway.tasks.changes import TaskChanges
from gateway.tasks.engine import TaskEngine
from gateway.tasks.inprocess import InProcessEngine
from gateway.tasks.kinds import TaskKinds
from gateway.tasks.lease import ResourceLeases, lease_names
from gateway.tasks.quota import CallerQuota, check_input_shape
from gateway.tasks.reaper import Observe, Reaper
from gateway.tasks.record import TaskRecord, utcnow
from gateway.tasks.runner import TaskRunner
from gateway.tasks.stats import TaskStats
from gateway.tasks.store import TaskStore

log = structlog.get_logger("gateway.tasks")


class TaskQueue:
    """Tasks as the schema sees them; the engine decides where they run."""

    def __init__(
        self,
        store: TaskStore,
        leases: ResourceLeases,
        changes: TaskChanges,
        quota: CallerQuota,
        engine: TaskEngine,
        settings: TaskSettings,
        observe: Observe,
    ) -> None:
        self.engine = engine
        self._observe = observe
        self._quota = quota
        self._store = store
        self._leases = leases
        self._changes = changes
        self._settings = settings
        self._reaper = Reaper(store, leases, engine.dispatch, settings)
        self._sweeper: asyncio.Task[None] | None = None

    @classmethod
    def create(cls, runtime: Runtime, kinds: TaskKinds | None = None) -> "TaskQueue":
        """The queue for `runtime.settings.role`: in-process for `all` (running `kinds`, which
        it then needs), Celery for `api`."""
        settings = runtime.settings
        store, leases, changes = task_parts(runtime)
        engine: TaskEngine
        if settings.role == "all":
            if kinds is None:
                raise ValueError("role `all` runs tasks in process: it needs the task kinds")
            runner = TaskRunner(runtime, store, leases, changes, kinds, settings.tasks)
            engine = InProcessEngine(runner, settings.tasks.in_process_concurrency)
        else:
            from gateway.tasks.celery_app import create_celery_app
            from gateway.tasks.celery_engine import CeleryEngine

            engine = CeleryEngine(create_celery_app(settings))
        quota = CallerQuota(runtime.redis, store.keys, settings.tasks)
        stats = TaskStats(store, runtime.metrics, broker_queues=settings.role == "api")

        async def observe() -> None:
            await stats.observe()
            await runtime.events.observe_backlog()

        return cls(store, leases, changes, quota, engine, settings.tasks, observe)

    async def start(self) -> None:
        """Start the engine and the periodic sweep for lost workers."""
        await self.engine.start()
        self._sweeper = asyncio.create_task(self._reaper.sweep_periodically(self._observe))

    async def aclose(self) -> None:
        """Stop the sweep, the engine and the change reader."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.engine.aclose()
        await self._changes.aclose()

    async def submit(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        dry_run: bool,
        resource: str | None = None,
        request_id: str = "",
        caller: str | None = None,
        self_bounded: Collection[str] = (),
    ) -> TaskRecord:
        """A new pending task; for a real run on a busy `resource`, the task already holding it.

        The input is bounded in shape and size (BAD_USER_INPUT; strings under a key in
        `self_bounded` are bounded by the kind itself); a `caller`'s stored inputs are bounded
        per record lifetime (LIMIT_EXCEEDED).
        """
        check_input_shape(payload, self._settings, self_bounded)
        encoded = json.dumps(payload, separators=(",", ":"))
        record = TaskRecord(
            id=str(uuid.uuid4()),
            kind=kind,
            dry_run=dry_run,
            resource=resource,
            request_id=request_id,
            traceparent=tracing.current_traceparent(),
            submitted_at=utcnow(),
        )
        if caller is not None:
            await self._quota.admit(caller, record.id, len(encoded.encode()))
        await self._store.create(record, encoded)
        if resource is not None and not dry_run:
            try:
                holder = await self._hold(resource, record.id)
            except Conflict:
                await self._store.delete(record.id)
                raise
            if holder is not None:
                await self._store.delete(record.id)
                log.info("real run deduplicated", task_id=holder.id, resource=resource)
                return holder
        try:
            await self.engine.dispatch(record)
        except Exception as error:
            await self._store.delete(record.id)
            if resource is not None and not dry_run:
                await self._leases.release(resource, record.id)
            raise redis_unavailable(error, "task broker") from None
        log.info("task submitted", task_id=record.id, kind=kind, dry_run=dry_run)
        return record

    async def _hold(self, resource: str, task_id: str) -> TaskRecord | None:
        """Take every lease of `resource` for `task_id` (None), or return the unfinished task
        holding exactly these leases (a duplicate run).

        A running task holding only some of them (an overlapping set of workspaces) refuses
        this run with CONFLICT naming it: two real runs never change one resource at once,
        and a run with a different set is not the same run, so it is not deduplicated.
        """
        ttl = self._settings.record_ttl
        ended: list[str] = []
        while True:
            blocking = await self._leases.acquire(resource, task_id, ttl, ended)
            if not blocking:
                return None
            for holder_id in blocking:
                holder = await self._store.read(holder_id)
                if holder is None or holder.status.finished:
                    ended.append(holder_id)
                elif holder.resource == resource:
                    return holder
                else:
                    shared = sorted(
                        set(lease_names(resource)) & set(lease_names(holder.resource or ""))
                    )
                    raise Conflict(
                        f"task {holder.id} is already applying changes to {', '.join(shared)}; "
                        "submit again once it has ended",
                        task_id=holder.id,
                    )

    async def get(self, task_id: str) -> TaskRecord:
        """The task's record (a lost run is reaped first); NOT_FOUND for an unknown id."""
        record = await self._store.read(task_id)
        if record is None:
            raise NotFound(f"no task {shown(task_id)} (unknown, or its record expired)")
        return await self._reaper.reap(record)

    async def wait(self, task_id: str, seconds: float) -> TaskRecord:
        """The record once the task has ended, or as it is after `seconds`."""
        deadline = time.monotonic() + seconds
        async with self._changes.listen(task_id) as changes:
            record = await self.get(task_id)
            while not record.status.finished and (left := deadline - time.monotonic()) > 0:
                await changes.next(min(left, self._check_every))
                record = await self.get(task_id)
        return record

    async def watch(self, task_id: str) -> AsyncIterator[TaskRecord]:
        """The record now and after each status change, until the task ends."""
        async with self._changes.listen(task_id) as changes:
            record = await self.get(task_id)
            yield record
            seen = (record.status, record.attempt)
            while not record.status.finished:
                await changes.next(self._check_every)
                record = await self.get(task_id)
                if (record.status, record.attempt) != seen:
                    seen = (record.status, record.attempt)
                    yield record

    @property
    def _check_every(self) -> float:
        """How often a waiter checks the run's heartbeat when no change arrives."""
        return self._settings.heartbeat_timeout / 2


def task_parts(runtime: Runtime) -> tuple[TaskStore, ResourceLeases, TaskChanges]:
    """The store, leases and change channels on the runtime's Redis and namespace."""
    keys = TaskKeys(runtime.settings.redis.namespace)
    return (
        TaskStore(runtime.redis, keys, runtime.settings.tasks.record_ttl),
        ResourceLeases(runtime.redis, keys),
        TaskChanges(runtime.redis, keys, confirm_timeout=runtime.settings.redis.socket_timeout),
    )
