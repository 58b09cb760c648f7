"""The Celery worker side: each worker process runs the task functions on its own event loop."""

import asyncio

from celery import Celery

from gateway.runtime import Runtime
from gateway.settings import Settings
from gateway.tasks.celery_app import RUN_TASK, create_celery_app
from gateway.tasks.kinds import KindsFactory
from gateway.tasks.queue import task_parts
from gateway.tasks.runner import TaskRunner


class WorkerProcess:
    """One worker process's loop, runtime and runner, made on its first task (after the fork)."""

    def __init__(self, settings: Settings, kinds: KindsFactory) -> None:
        self._settings = settings
        self._kinds = kinds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: TaskRunner | None = None

    def run(self, task_id: str, attempt: int) -> None:
        """Run one delivery to its end on this process's loop."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        if self._runner is None:
            self._runner = self._loop.run_until_complete(self._create_runner())
        self._loop.run_until_complete(self._runner.run(task_id, attempt))

    async def _create_runner(self) -> TaskRunner:
        runtime = Runtime.create(self._settings)
        kinds = self._kinds(runtime)
        store, leases, changes = task_parts(runtime)
        return TaskRunner(runtime, store, leases, changes, kinds, self._settings.tasks)


def create_worker_app(settings: Settings, kinds: KindsFactory) -> Celery:
    """The Celery app with the gateway's one task registered: run a delivery of a task of one
    of the kinds `kinds` makes (in each worker process, after the fork)."""
    app = create_celery_app(settings)
    process = WorkerProcess(settings, kinds)

    def run(task_id: str, attempt: int) -> None:
        process.run(task_id, attempt)

    app.task(name=RUN_TASK, ignore_result=True, acks_late=True, reject_on_worker_lost=True)(run)
    return app
