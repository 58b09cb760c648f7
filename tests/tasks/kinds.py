"""Test-only task kinds (the queues and workers of tests/tasks run them), never shipped."""

import json
import os
from typing import Any

from gateway.runtime import Runtime
from gateway.tasks.kinds import TaskContext, TaskKinds


async def echo(payload: dict[str, Any], context: TaskContext) -> dict[str, Any]:
    """Return the payload."""
    return {"echo": payload, "dry_run": context.dry_run}


async def gated(payload: dict[str, Any], context: TaskContext) -> dict[str, Any]:
    """Report the start on list `started`, then wait until the test pushes to list `gate`."""
    redis = context.runtime.redis
    me = {"pid": os.getpid(), "attempt": context.attempt, "task_id": context.task_id}
    await redis.rpush(payload["started"], json.dumps(me))
    # The block stays under the client's 1 s socket timeout.
    while not await redis.blpop([payload["gate"]], timeout=0.5):
        pass
    return me


async def broken(payload: dict[str, Any], context: TaskContext) -> dict[str, Any]:
    """Fail with an unexpected error whose text must not reach the caller."""
    raise RuntimeError("password=hunter2")


def test_kinds(runtime: Runtime) -> TaskKinds:
    """The registry the task tests run with."""
    kinds = TaskKinds()
    kinds.register("test.echo", echo)
    kinds.register("test.gated", gated)
    kinds.register("test.broken", broken)
    return kinds
