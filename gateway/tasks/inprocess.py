"""The embedded engine (`serve --role all`): the task functions run on a bounded asyncio pool."""

import asyncio
import contextlib

import structlog
from redis.exceptions import RedisError

from gateway.tasks.engine import QUEUES, queue_for
from gateway.tasks.record import TaskRecord
from gateway.tasks.runner import TaskRunner

log = structlog.get_logger("gateway.tasks")


class InProcessEngine:
    """`concurrency` asyncio workers per queue, so dry runs never wait behind real runs."""

    def __init__(self, runner: TaskRunner, concurrency: int) -> None:
        self._runner = runner
        self._concurrency = concurrency
        self._queues: dict[str, asyncio.Queue[tuple[str, int]]] = {
            name: asyncio.Queue() for name in QUEUES
        }
        self._workers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start the workers."""
        self._workers = [
            asyncio.create_task(self._work(queue), name=f"task-worker-{name}-{n}")
            for name, queue in self._queues.items()
            for n in range(self._concurrency)
        ]

    async def dispatch(self, record: TaskRecord) -> None:
        """Queue the delivery for a worker of the record's queue."""
        self._queues[queue_for(record)].put_nowait((record.id, record.attempt))

    async def aclose(self) -> None:
        """Cancel the workers; an interrupted task is found and requeued by its heartbeat."""
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._workers = []
        await self._runner.kinds.aclose()

    async def _work(self, queue: "asyncio.Queue[tuple[str, int]]") -> None:
        while True:
            task_id, attempt = await queue.get()
            try:
                await self._runner.run(task_id, attempt)
            except (RedisError, OSError) as error:
                # Not a bug: the sweep finds the task (pending or lost) and dispatches it again.
                log.warning(
                    "task delivery failed; Redis unavailable", task_id=task_id, error=repr(error)
                )
            except Exception:
                log.exception("task delivery crashed", task_id=task_id)
