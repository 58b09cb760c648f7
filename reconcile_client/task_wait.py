"""Waiting for a reconcile task the gateway runs: it blocks up to 300 s per request."""

import asyncio
import math
import time
from collections.abc import Callable
from enum import Enum
from typing import Protocol, TypeVar

from pydantic import BaseModel

from reconcile_client.errors import IntegrationFailed
from reconcile_client.gateway_client import GatewayClient
from reconcile_client.operations import Operation

TASK_WAIT_SECONDS = 300
FINISHED = frozenset({"success", "failed"})


class TaskView(Protocol):
    """What every generated `ReconcileTask_v1` model has: its status."""

    @property
    def status(self) -> Enum:
        """`pending`, `running`, `success` or `failed`."""


ResultT = TypeVar("ResultT", bound=BaseModel)
TaskT = TypeVar("TaskT", bound=TaskView)


async def wait_for_task(
    gateway: GatewayClient,
    operation: Operation[ResultT],
    task_id: str,
    task_of: Callable[[ResultT], TaskT],
) -> TaskT:
    """The task (read with `operation`, taken from its answer by `task_of`) once finished, or
    as it is after TASK_WAIT_SECONDS."""
    deadline = time.monotonic() + TASK_WAIT_SECONDS
    while True:
        remaining = math.ceil(deadline - time.monotonic())
        data = await gateway.execute(
            operation,
            {"id": task_id, "wait_seconds": max(0, min(remaining, TASK_WAIT_SECONDS))},
            read_timeout=max(remaining, 0) + 30,
        )
        task = task_of(data)
        if task.status.value in FINISHED or remaining <= 0:
            return task
        await asyncio.sleep(min(1.0, max(remaining, 0)))


class ResultView(Protocol):
    """What every typed result (`ReconcileTaskResult_v1`) has: its status and errors."""

    @property
    def status(self) -> str:
        """`success` or `failed`."""

    @property
    def errors(self) -> list[str]:
        """One line per error."""


def report_task(
    task_id: str, status: str, error: str | None, result: ResultView | None, actions: list[str]
) -> None:
    """Print a dry run's `actions` (one line each), its status and errors; IntegrationFailed
    on errors, a failed task or one still pending or running after the wait."""
    if status not in FINISHED:
        raise IntegrationFailed(f"task {task_id} still {status} after {TASK_WAIT_SECONDS} s")
    errors = result.errors if result else []
    for action in actions:
        print(f"[dry-run] {action}")
    print(f"task {task_id}: {result.status if result else status}, {len(actions)} action(s)")
    for line in errors:
        print(f"error: {line}")
    if status == "failed" or errors:
        raise IntegrationFailed(f"task {task_id} failed: {error or f'{len(errors)} error(s)'}")
