"""Runs one delivery of a task: claim, hold heartbeat and lease, call the kind, record the end."""

import asyncio
import contextlib
import json
import time
import uuid
from typing import Any

import structlog
from opentelemetry.trace import SpanKind, get_current_span
from redis.exceptions import RedisError

from gateway import tracing
from gateway.errors import GatewayError, redis_unavailable
from gateway.runtime import Runtime
from gateway.settings import TaskSettings
from gateway.tasks.changes import TaskChanges
from gateway.tasks.engine import queue_for
from gateway.tasks.kinds import TaskContext, TaskFunction, TaskKinds
from gateway.tasks.lease import ResourceLeases
from gateway.tasks.record import TaskRecord, TaskStatus
from gateway.tasks.store import Claim, TaskStore

log = structlog.get_logger("gateway.tasks")


class TaskRunner:
    """Executes deliveries of tasks in this process; both engines hand their tasks to it."""

    def __init__(
        self,
        runtime: Runtime,
        store: TaskStore,
        leases: ResourceLeases,
        changes: TaskChanges,
        kinds: TaskKinds,
        settings: TaskSettings,
    ) -> None:
        self.runtime = runtime
        self.kinds = kinds
        self._store = store
        self._leases = leases
        self._changes = changes
        self._settings = settings

    async def run(self, task_id: str, attempt: int) -> None:
        """Run attempt `attempt` of `task_id` unless it is finished, superseded or held."""
        with structlog.contextvars.bound_contextvars(task_id=task_id):
            token = uuid.uuid4().hex
            claim = await self._claim(task_id, attempt, token)
            record = await self._store.read(task_id) if claim == "claimed" else None
            if record is None:
                log.info("task delivery dropped", reason=claim, attempt=attempt)
                return
            # Every line of the run names the request that submitted it.
            structlog.contextvars.bind_contextvars(request_id=record.request_id)
            log.info("task started", kind=record.kind, dry_run=record.dry_run, attempt=attempt)
            with tracing.span(
                f"task {record.kind}",
                {
                    "qontract.task.kind": record.kind,
                    "qontract.task.dry_run": record.dry_run,
                    "qontract.task.attempt": record.attempt,
                    "qontract.task.queue": queue_for(record),
                },
                traceparent=record.traceparent,
                kind=SpanKind.CONSUMER,
            ):
                await self._execute(record, token)

    async def _claim(self, task_id: str, attempt: int, token: str) -> Claim:
        """Claim, waiting while a previous run's heartbeat has yet to expire (a redelivery)."""
        timeout = self._settings.heartbeat_timeout
        deadline = time.monotonic() + 2 * timeout
        async with self._changes.listen(task_id) as changes:
            while True:
                claim = await self._store.claim(task_id, attempt, token, timeout)
                if claim != "busy" or time.monotonic() > deadline:
                    return claim
                await changes.next(await self._store.heartbeat_left(task_id) + 0.05)

    async def _execute(self, record: TaskRecord, token: str) -> None:
        function = self.kinds.get(record.kind)
        if function is None:
            await self._end(record, token, error=f"unknown task kind {record.kind!r}")
            return
        real = record.resource is not None and not record.dry_run
        if record.resource is not None and real:
            blocking = await self._leases.acquire(
                record.resource, record.id, self._settings.heartbeat_timeout
            )
            if blocking:
                await self._end(record, token, error=f"superseded by task {blocking[0]}")
                return
        context = TaskContext(
            task_id=record.id,
            kind=record.kind,
            dry_run=record.dry_run,
            resource=record.resource,
            request_id=record.request_id,
            attempt=record.attempt,
            runtime=self.runtime,
        )
        work = asyncio.create_task(self._call(function, record.id, context))
        keeper = asyncio.create_task(self._keep_alive(record, token, work))
        try:
            result = await work
        except asyncio.CancelledError:
            if not (keeper.done() and keeper.result()):
                raise
            log.warning("task taken from this run (heartbeat lost); abandoning it")
            return
        except GatewayError as error:
            await self._end(record, token, error=error.message)
        except RedisError as error:
            await self._end(record, token, error=redis_unavailable(error).message)
        except Exception:
            log.exception("task failed")
            await self._end(record, token, error=f"internal error; see logs for {record.id}")
        else:
            await self._end(record, token, result=result)
        finally:
            keeper.cancel()
            work.cancel()
        if record.resource is not None and real:
            await self._leases.release(record.resource, record.id)

    async def _call(
        self, function: TaskFunction, task_id: str, context: TaskContext
    ) -> dict[str, Any]:
        """`function` on the task's stored payload; reading it fails the task like the kind."""
        return await function(await self._store.payload(task_id), context)

    async def _keep_alive(
        self, record: TaskRecord, token: str, work: "asyncio.Task[dict[str, Any]]"
    ) -> bool:
        """Renew heartbeat and lease; cancel `work` and return True once the task is lost."""
        timeout = self._settings.heartbeat_timeout
        while True:
            await asyncio.sleep(self._settings.heartbeat_interval)
            try:
                held = await self._store.renew(record.id, token, timeout)
                if held and record.resource is not None and not record.dry_run:
                    held = await self._leases.renew(record.resource, record.id, timeout)
            except RedisError as error:
                log.warning("heartbeat renewal failed; retrying", error=repr(error))
                continue
            if not held:
                work.cancel()
                return True

    async def _end(
        self,
        record: TaskRecord,
        token: str,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        if error is None and not _is_json_object(result):
            error, result = "the task returned something other than a JSON object", None
        status = TaskStatus.FAILED if error is not None else TaskStatus.SUCCESS
        tracing.annotate({"qontract.task.status": status.value})
        if error is not None and tracing.enabled():
            tracing.failed(get_current_span(), "TASK_FAILED")
        done = await self._store.finish(record.id, token, record.attempt, status, result, error)
        if done:
            log.info("task finished", status=status.value, error=error)
        else:
            log.warning("task outcome discarded: another run holds the task now")


def _is_json_object(value: object) -> bool:
    if not isinstance(value, dict):
        return False
    with contextlib.suppress(TypeError, ValueError):
        json.dumps(value)
        return True
    return False
