"""qontract-server answers kept by the gateway: raw bytes, compressed once, fetched once.

A pinned answer is immutable, so a kept copy is exact. In process, answers are kept
least-recently-used first out and bounded by the bytes they take (large ones compressed). In
Redis an answer is one string, a short header and the body as qontract-server sent it (zlib
compressed when large), never JSON inside JSON. One replica fetches a given answer at a time:
it holds an owned lease while fetching, the others poll for the value; the fetching caller gets
its answer before it is compressed and written (that happens next, off the caller's path).
"""

import asyncio
import contextlib
import secrets
import time
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from gateway.owned_lease import OwnedLeases, ms
from gateway.redis_keys import AnswerKeys
from resolvers.qontract_server.api import Answer

log = structlog.get_logger("gateway.federation")

COMPRESS_FROM = 64 * 1024
"""Bodies from this size are kept zlib-compressed (level 1: ~15 x smaller app-interface JSON,
~3 ms per MB to compress, ~1 ms per MB to expand)."""
LEASE = 5.0
POLL = 0.05
WAIT = 35.0
"""Longest wait for another replica's fetch (a qontract-server answer takes at most its 30 s
timeout); then this replica fetches itself."""

Fetch = Callable[[], Awaitable[Answer]]


@dataclass(frozen=True)
class Kept:
    """An answer as kept: status, content type, and its body (compressed or not)."""

    status: int
    content_type: str
    stored: bytes
    compressed: bool

    @classmethod
    def of(cls, answer: Answer) -> "Kept":
        """`answer`, compressed when large and that makes it smaller (CPU-bound: call off the
        event loop)."""
        if len(answer.body) >= COMPRESS_FROM:
            compressed = zlib.compress(answer.body, 1)
            if len(compressed) < len(answer.body):
                return cls(answer.status, answer.content_type, compressed, True)
        return cls(answer.status, answer.content_type, answer.body, False)

    def answer(self) -> Answer:
        """The answer, expanded."""
        body = zlib.decompress(self.stored) if self.compressed else self.stored
        return Answer(self.status, self.content_type, body)

    def encoded(self) -> bytes:
        """The Redis string: `<status> <z|-> <content type>\\n<body>`."""
        flag = "z" if self.compressed else "-"
        return f"{self.status} {flag} {self.content_type}\n".encode() + self.stored

    @classmethod
    def decoded(cls, raw: bytes) -> "Kept | None":
        """A Redis string written by `encoded`; None when it is not one (a miss)."""
        head, newline, stored = raw.partition(b"\n")
        fields = head.decode(errors="replace").split(" ", 2)
        if (
            not newline
            or len(fields) != 3
            or not fields[0].isdigit()
            or fields[1] not in ("z", "-")
        ):
            return None
        return cls(int(fields[0]), fields[2], stored, fields[1] == "z")


TOO_LARGE = b"large"
"""Stored instead of an answer too large for Redis: waiting replicas fetch it themselves."""


class AnswerMemory:
    """Answers kept in process: least recently used first out, bounded by the bytes kept."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[str, Kept] = OrderedDict()

    def get(self, name: str) -> Answer | None:
        """The answer kept under `name`, marked as recently used."""
        kept = self._entries.get(name)
        if kept is None:
            return None
        self._entries.move_to_end(name)
        return kept.answer()

    def put(self, name: str, kept: Kept) -> None:
        """Keep `kept` (replacing a copy under `name`) unless it alone exceeds the bound; evict
        the oldest until it fits."""
        if len(kept.stored) > self.max_bytes:
            return
        old = self._entries.pop(name, None)
        if old is not None:
            self.size -= len(old.stored)
        self._entries[name] = kept
        self.size += len(kept.stored)
        while self.size > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.size -= len(evicted.stored)


class SharedAnswers:
    """Answers in process and in Redis, fetched by one caller on one replica at a time."""

    def __init__(
        self,
        redis: "aioredis.Redis",
        keys: AnswerKeys,
        memory_bytes: int,
        redis_entry_bytes: int,
        ttl: float,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.memory = AnswerMemory(memory_bytes)
        self.redis_entry_bytes = redis_entry_bytes
        self.ttl = ttl
        self.fetches = 0
        self._leases = OwnedLeases(redis)
        self._inflight: dict[str, asyncio.Future[Answer]] = {}
        self._storing: set[asyncio.Task[None]] = set()

    async def get(self, ident: str, fetch: Fetch) -> Answer:
        """The answer `ident`: kept here, else stored in Redis, else fetched (once)."""
        found = self.memory.get(ident)
        if found is not None:
            return found
        task = self._inflight.get(ident)
        if task is None:
            task = asyncio.ensure_future(self._shared(ident, fetch))
            self._inflight[ident] = task
            task.add_done_callback(lambda _: self._inflight.pop(ident, None))
        return await asyncio.shield(task)

    async def _shared(self, ident: str, fetch: Fetch) -> Answer:
        value, lease = self.keys.value(ident), self.keys.lease(ident)
        deadline = time.monotonic() + WAIT
        try:
            while True:
                token = secrets.token_hex(16)
                stored, taken = await self._leases.read_or_acquire(value, [lease], token, LEASE)
                if stored is not None:
                    return await self._stored(ident, stored, fetch)
                if taken:
                    return await self._fetch_holding(ident, lease, token, fetch)
                while await self.redis.exists(lease) and time.monotonic() < deadline:
                    await asyncio.sleep(POLL)
                    polled = await self.redis.get(value)
                    if polled is not None:
                        return await self._stored(ident, polled, fetch)
                if time.monotonic() >= deadline:
                    return await self._fetch_kept(ident, fetch)
        except RedisError as error:
            log.warning("answer store unavailable, fetching", error=type(error).__name__)
            return await self._fetch_kept(ident, fetch)

    async def _stored(self, ident: str, stored: bytes | str, fetch: Fetch) -> Answer:
        kept = Kept.decoded(stored if isinstance(stored, bytes) else stored.encode())
        if kept is None:  # too large to share: the fetching replica kept it for itself
            return await self._fetch_kept(ident, fetch)
        self.memory.put(ident, kept)
        return kept.answer()

    async def _fetch_kept(self, ident: str, fetch: Fetch) -> Answer:
        answer = await self._fetch(fetch)
        self.memory.put(ident, await asyncio.to_thread(Kept.of, answer))
        return answer

    async def _fetch(self, fetch: Fetch) -> Answer:
        self.fetches += 1
        return await fetch()

    async def _fetch_holding(self, ident: str, lease: str, token: str, fetch: Fetch) -> Answer:
        renewer = asyncio.ensure_future(self._renew(lease, token))
        try:
            answer = await self._fetch(fetch)
        except BaseException:
            renewer.cancel()
            await self._release(lease, token)
            raise
        task = asyncio.ensure_future(self._store(ident, answer, lease, token, renewer))
        self._storing.add(task)
        task.add_done_callback(self._storing.discard)
        self.memory.put(ident, Kept(answer.status, answer.content_type, answer.body, False))
        return answer

    async def _store(
        self, ident: str, answer: Answer, lease: str, token: str, renewer: "asyncio.Task[None]"
    ) -> None:
        """Compress (in a thread), keep, write to Redis, then free the lease."""
        try:
            await asyncio.sleep(0)  # the caller waiting on the answer resumes (and sends it) first
            kept = await asyncio.to_thread(Kept.of, answer)
            self.memory.put(ident, kept)
            encoded = kept.encoded()
            shared = encoded if len(encoded) <= self.redis_entry_bytes else TOO_LARGE
            await self.redis.set(self.keys.value(ident), shared, px=ms(self.ttl))
        except RedisError as error:
            log.warning("answer not shared", error=type(error).__name__)
        finally:
            renewer.cancel()
            await self._release(lease, token)

    async def _renew(self, lease: str, token: str) -> None:
        while True:
            await asyncio.sleep(LEASE / 3)
            with contextlib.suppress(RedisError):
                await self._leases.renew([lease], token, LEASE)

    async def _release(self, lease: str, token: str) -> None:
        with contextlib.suppress(RedisError):
            await self._leases.release([lease], token)

    async def settled(self) -> None:
        """Wait until every answer fetched here is kept and written (tests, shutdown)."""
        while self._storing:
            await asyncio.gather(*self._storing, return_exceptions=True)
