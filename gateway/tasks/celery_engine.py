"""The scale-out engine (`serve --role api`): deliveries go to Celery workers through Redis."""

import asyncio

from celery import Celery

from gateway.tasks.celery_app import RUN_TASK
from gateway.tasks.engine import queue_for
from gateway.tasks.record import TaskRecord


class CeleryEngine:
    """Enqueues `gateway.tasks.run(task_id, attempt)` on the record's queue; runs nothing here."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    async def start(self) -> None:
        """Nothing to start: workers are separate processes."""

    async def dispatch(self, record: TaskRecord) -> None:
        """Publish the delivery message (kombu is blocking; it runs in a thread)."""
        await asyncio.to_thread(
            self._app.send_task,
            RUN_TASK,
            args=[record.id, record.attempt],
            queue=queue_for(record),
        )

    async def aclose(self) -> None:
        """Close the broker connections."""
        await asyncio.to_thread(self._app.close)
