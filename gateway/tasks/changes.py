"""Wake-ups for waiters: one pub/sub connection per process, fanned out to every waiter."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.redis_keys import TaskKeys

log = structlog.get_logger("gateway.tasks")

# How long the reader waits for a message before it looks again (it never holds a lock).
READ_SLICE_SECONDS = 1.0


class ChangeListener:
    """One waiter's view of one task's changes."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def notify(self) -> None:
        """A change arrived for the task (called by the process's reader)."""
        self._changed.set()

    async def next(self, within: float) -> bool:
        """Block until a change arrives (True) or `within` seconds pass (False)."""
        try:
            async with asyncio.timeout(max(within, 0)):
                await self._changed.wait()
        except TimeoutError:
            return False
        self._changed.clear()
        return True


class _Channel:
    """The waiters of one channel, and whether Redis has confirmed the subscription."""

    def __init__(self) -> None:
        self.listeners: set[ChangeListener] = set()
        self.confirmed = asyncio.Event()


class TaskChanges:
    """Subscriptions to task change channels, all on one pub/sub connection of the process.

    Any number of waiters cost one pooled connection: a channel is subscribed while at least
    one waiter listens to it, and one reader task hands each message to that channel's waiters.
    """

    def __init__(
        self, redis: "aioredis.Redis", keys: TaskKeys, confirm_timeout: float = 1.0
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._confirm_timeout = confirm_timeout
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._channels: dict[str, _Channel] = {}
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def listen(self, task_id: str) -> AsyncIterator[ChangeListener]:
        """Subscribe before reading the record, so no change falls between read and wait."""
        name = self._keys.changes(task_id)
        listener = ChangeListener()
        channel = await self._join(name, listener)
        try:
            await self._confirmed(channel)
            yield listener
        finally:
            await self._leave(name, listener)

    async def aclose(self) -> None:
        """Stop the reader and release the pub/sub connection."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None
        self._channels.clear()

    async def _join(self, name: str, listener: ChangeListener) -> _Channel:
        async with self._lock:
            channel = self._channels.get(name)
            if channel is None:
                if self._pubsub is None:
                    self._pubsub = self._redis.pubsub()
                channel = self._channels[name] = _Channel()
                try:
                    await self._pubsub.subscribe(name)
                except BaseException:
                    del self._channels[name]
                    raise
                if self._reader is None or self._reader.done():
                    self._reader = asyncio.create_task(self._read(), name="task-changes-reader")
            channel.listeners.add(listener)
            return channel

    async def _confirmed(self, channel: _Channel) -> None:
        """Wait until Redis acknowledged the subscription, or fail like a Redis command would."""
        try:
            async with asyncio.timeout(self._confirm_timeout):
                await channel.confirmed.wait()
        except TimeoutError:
            raise RedisTimeoutError("no subscription confirmation from Redis") from None

    async def _leave(self, name: str, listener: ChangeListener) -> None:
        async with self._lock:
            channel = self._channels.get(name)
            if channel is None:
                return
            channel.listeners.discard(listener)
            if channel.listeners:
                return
            del self._channels[name]
            if self._pubsub is not None:
                with contextlib.suppress(RedisError, OSError):
                    await self._pubsub.unsubscribe(name)

    async def _read(self) -> None:
        assert self._pubsub is not None
        failing = False
        while True:
            try:
                message = await self._pubsub.get_message(timeout=READ_SLICE_SECONDS)
            except (RedisError, OSError) as error:
                if not failing:
                    log.warning("task change reader failed; retrying", error=repr(error))
                failing = True
                self._wake_all()
                await asyncio.sleep(READ_SLICE_SECONDS)
                continue
            failing = False
            if message is not None:
                self._deliver(message)

    def _deliver(self, message: dict[str, Any]) -> None:
        raw = message.get("channel")
        name = raw.decode() if isinstance(raw, bytes) else str(raw)
        channel = self._channels.get(name)
        if channel is None:
            return
        if message.get("type") == "subscribe":
            channel.confirmed.set()
            return
        for listener in channel.listeners:
            listener.notify()

    def _wake_all(self) -> None:
        """After a lost connection every waiter is woken: it re-reads its task's record."""
        for channel in self._channels.values():
            for listener in channel.listeners:
                listener.notify()
