"""The task backlog as gauges: read from the shared indexes and broker lists by each sweep."""

import time
from typing import Any

from gateway.metrics import GatewayMetrics
from gateway.tasks.engine import QUEUES
from gateway.tasks.record import TaskStatus
from gateway.tasks.store import TaskStore


class TaskStats:
    """Pending and running counts, the oldest of each, and (with Celery) the broker lists."""

    def __init__(self, store: TaskStore, metrics: GatewayMetrics, *, broker_queues: bool) -> None:
        self._store = store
        self._metrics = metrics
        self._broker_queues = QUEUES if broker_queues else ()

    async def observe(self) -> None:
        """Update the gauges with one pipelined read (and one record field for the oldest)."""
        keys = self._store.keys
        async with self._store.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(keys.pending())
            pipe.zcard(keys.running())
            pipe.zrange(keys.pending(), 0, 0)
            pipe.zrange(keys.running(), 0, 0, withscores=True)
            for queue in self._broker_queues:
                pipe.llen(keys.celery_prefix() + queue)
            pending, running, oldest_pending, oldest_running, *lengths = await pipe.execute()
        submitted = await self._submitted_at(oldest_pending)
        # Every gauge is set after the last await, so a scrape sees one consistent reading.
        now = time.time()
        started = oldest_running[0][1] if oldest_running else now
        pending_age = max(0.0, now - submitted) if submitted is not None else 0.0
        self._metrics.tasks.labels(TaskStatus.PENDING.value).set(pending)
        self._metrics.tasks.labels(TaskStatus.RUNNING.value).set(running)
        self._metrics.task_oldest_seconds.labels(TaskStatus.PENDING.value).set(pending_age)
        self._metrics.task_oldest_seconds.labels(TaskStatus.RUNNING.value).set(now - started)
        for queue, length in zip(self._broker_queues, lengths, strict=True):
            self._metrics.task_queue_messages.labels(queue).set(length)

    async def _submitted_at(self, ids: list[Any]) -> float | None:
        """When the task least recently dispatched was submitted (redispatch keeps the order)."""
        if not ids:
            return None
        task_id = ids[0].decode() if isinstance(ids[0], bytes) else str(ids[0])
        return await self._store.submitted_at(task_id)  # None: it just ended or expired
