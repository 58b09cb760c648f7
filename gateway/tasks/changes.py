"""Wake-ups for waiters: a task's status changes arrive on its pub/sub channel."""

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub

from gateway.tasks.keys import TaskKeys


class ChangeListener:
    """One subscription to one task's changes."""

    def __init__(self, pubsub: PubSub) -> None:
        self._pubsub = pubsub

    async def next(self, within: float) -> bool:
        """Block until a change arrives (True) or `within` seconds pass (False)."""
        deadline = time.monotonic() + within
        while (left := deadline - time.monotonic()) > 0:
            # An explicit timeout replaces the client's socket timeout for this read.
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
            if message is not None:
                return True
        return False


class TaskChanges:
    """Subscriptions to task change channels."""

    def __init__(self, redis: "aioredis.Redis", keys: TaskKeys) -> None:
        self._redis = redis
        self._keys = keys

    @asynccontextmanager
    async def listen(self, task_id: str) -> AsyncIterator[ChangeListener]:
        """Subscribe before reading the record, so no change falls between read and wait."""
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self._keys.changes(task_id))
            yield ChangeListener(pubsub)
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
