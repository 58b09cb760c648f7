"""Two-tier cache (process memory in front of Redis) with single flight across replicas."""

import asyncio
import collections
import contextlib
import functools
import json
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter
from pydantic import TypeAdapter
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway import tracing
from gateway.errors import (
    GatewayError,
    Timeout,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamUnavailable,
    redis_unavailable,
)
from gateway.owned_lease import OwnedLeases, ms
from gateway.redis_keys import CacheKeys, tag

T = TypeVar("T")
Outcome = Literal["hit", "miss", "stale"]

FLAG: "TypeAdapter[bool]" = TypeAdapter(bool)
"""The record of a cached yes/no (a ref exists)."""
TEXT: "TypeAdapter[str | None]" = TypeAdapter(str | None)
"""The record of a cached text, None when there is none (a file)."""

STALE_ON: tuple[type[BaseException], ...] = (
    UpstreamUnavailable,
    UpstreamRateLimited,
    UpstreamError,
    Timeout,
)


@dataclass(frozen=True)
class CacheKey:
    """What is cached: system, account name (never a secret), data type and the thing's id.

    Keys of one (system, account, data type) share a Redis hash tag, so a DataLoader batch is
    one MGET even on Redis Cluster.
    """

    system: str
    account: str
    data_type: str
    ident: str

    @functools.cached_property
    def tag(self) -> str:
        """The Redis hash tag shared by all keys of this system, account and data type."""
        return tag(self.system, self.account, self.data_type)


@dataclass(frozen=True)
class CachePrefix:
    """A group of keys to invalidate at once: a whole system, account or data type."""

    system: str
    account: str | None = None
    data_type: str | None = None


@dataclass(frozen=True)
class CacheLookup:
    """Where a value came from, for GraphQL `extensions`: source, key, outcome and age."""

    source: str
    key: str
    outcome: Outcome
    age_seconds: float


@dataclass(frozen=True)
class Derived(Generic[T]):
    """A value built from other cached values: as old as its oldest input, stale if any was.

    A build returns it (see `Cache.get_or_derive`) so the cache can tell the truth about it:
    a derived value is reported with its oldest input's age, and one built from a stale input
    is served with outcome `stale` but never stored, so no replica takes it for fresh.
    """

    value: T
    inputs: tuple[CacheLookup, ...]

    @property
    def inputs_age(self) -> float:
        """Seconds since the oldest input was fetched (0 without inputs)."""
        return max((lookup.age_seconds for lookup in self.inputs), default=0.0)

    @property
    def stale(self) -> bool:
        """True when any input was a stale copy."""
        return any(lookup.outcome == "stale" for lookup in self.inputs)


class Subtrees:
    """Completed GraphQL subtrees of one cached value, per selection and item key; they live
    and die with the value's local-tier entry, so a new value never meets an old subtree.

    At most `limit` selections are kept per value (each with at most one subtree per item of
    the value); more are completed but not kept.
    """

    __slots__ = ("_by_selection", "limit")

    def __init__(self, limit: int = 8) -> None:
        self.limit = limit
        self._by_selection: dict[Hashable, dict[Hashable, Any]] = {}

    def get(self, selection: Hashable, key: Hashable) -> Any | None:
        """The subtree of item `key` completed for `selection`, or None."""
        completed = self._by_selection.get(selection)
        return None if completed is None else completed.get(key)

    def put(self, selection: Hashable, key: Hashable, completed: Any) -> None:
        """Keep `completed` (read-only from now on) for item `key` and `selection`, room
        permitting."""
        kept = self._by_selection.get(selection)
        if kept is None:
            if len(self._by_selection) >= self.limit:
                return
            kept = self._by_selection[selection] = {}
        kept[key] = completed


@dataclass(frozen=True)
class Cached(Generic[T]):
    """A value and its provenance; the value is shared between callers, so treat it as read-only.

    `subtrees` belong to the value's local-tier entry (a fresh, unshared set otherwise).
    """

    value: T
    lookup: CacheLookup
    subtrees: Subtrees = field(default_factory=Subtrees, compare=False, repr=False)


@dataclass
class _Entry:
    value: Any
    fetched_at: float
    local_until: float
    subtrees: Subtrees = field(default_factory=Subtrees)


class LocalTier:
    """A bounded, least-recently-used map of short-lived entries in process memory."""

    def __init__(self, max_entries: int, ttl: float) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def get(self, name: str) -> _Entry | None:
        """The live entry for `name`, marked as recently used, or None."""
        entry = self._entries.get(name)
        if entry is None:
            return None
        if entry.local_until <= time.monotonic():
            del self._entries[name]
            return None
        self._entries.move_to_end(name)
        return entry

    def put(self, name: str, value: Any, fetched_at: float, fresh_for: float) -> Subtrees:
        """Keep `value` for the local TTL, never longer than it stays fresh; its subtrees."""
        if self.max_entries <= 0 or self.ttl <= 0:
            return Subtrees()
        until = time.monotonic() + min(self.ttl, fresh_for)
        entry = _Entry(value, fetched_at, until)
        self._entries[name] = entry
        self._entries.move_to_end(name)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return entry.subtrees

    def expiry(self, name: str) -> float | None:
        """The monotonic instant `name`'s local copy expires, or None if there is none."""
        entry = self._entries.get(name)
        return entry.local_until if entry is not None else None

    def drop(self, name: str) -> None:
        """Forget `name`."""
        self._entries.pop(name, None)

    def drop_prefix(self, prefix: str) -> None:
        """Forget every name starting with `prefix`."""
        for name in [name for name in self._entries if name.startswith(prefix)]:
            del self._entries[name]


class CacheMetrics:
    """Cache lookups by system, data type and outcome (hit, miss, stale), in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.lookups = Counter(
            "qontract_gateway_cache_lookups_total",
            "Cache lookups by outcome",
            ["system", "data_type", "outcome"],
            registry=registry,
        )


@dataclass(frozen=True)
class _Stored:
    value: Any
    fetched_at: float
    ttl: float
    inputs_age: float = 0.0

    def age(self) -> float:
        return max(0.0, time.time() - self.fetched_at)

    @property
    def reported_at(self) -> float:
        """When the oldest data in the value was fetched (earlier than `fetched_at` when the
        value was derived from older cached inputs)."""
        return self.fetched_at - self.inputs_age


class Cache:
    """Redis-backed cache with a local tier, single flight across replicas and stale-if-error.

    Single flight: one caller per process (in-process coalescing) takes a Redis lock (SET NX PX
    with a random token) whose lease it renews while fetching, so a dead holder frees the key
    within one lease. Other replicas poll the value every `poll_interval` instead of using
    pub/sub: polling also notices a dead holder (the lock vanishes without a value), needs no
    extra connection, and costs one GET per interval per waiting *process*, not per caller.

    Writes (`put`, `invalidate`) reach Redis and this process's local tier at once; other
    replicas' local tiers keep the old value for at most `local_ttl` seconds.
    Fetch times are wall-clock seconds of the writing replica (replica clocks assumed synced).
    """

    def __init__(
        self,
        redis: "aioredis.Redis",
        namespace: str,
        metrics: CacheMetrics,
        *,
        local_ttl: float = 1.0,
        local_max_entries: int = 10_000,
        max_stale: float = 3600.0,
        lease: float = 5.0,
        poll_interval: float = 0.05,
        wait_timeout: float = 30.0,
        stale_on: tuple[type[BaseException], ...] = STALE_ON,
        batch_concurrency: int = 8,
    ) -> None:
        self._redis = redis
        self._namespace = namespace
        self._metrics = metrics
        self._local = LocalTier(local_max_entries, local_ttl)
        self._max_stale = max_stale
        self._lease = lease
        self._poll_interval = poll_interval
        self._wait_timeout = wait_timeout
        self._stale_on = stale_on
        self.batch_concurrency = batch_concurrency
        self._inflight: dict[str, asyncio.Task[Cached[Any]]] = {}
        self.writes = 0
        self._keys = CacheKeys(namespace)
        self._leases = OwnedLeases(redis)

    def key_name(self, cache_key: CacheKey) -> str:
        """The Redis key holding the value of `cache_key`."""
        return self._keys.value(cache_key.tag, cache_key.ident)

    def local_expiry(self, name: str) -> float | None:
        """When this process's copy of the value under Redis key `name` expires (monotonic)."""
        return self._local.expiry(name)

    def _lock_name(self, cache_key: CacheKey) -> str:
        return self._keys.lock(cache_key.tag, cache_key.ident)

    async def get_or_fetch(
        self,
        cache_key: CacheKey,
        fetch: Callable[[], Awaitable[T]],
        ttl: float,
        *,
        max_stale: float | None = None,
        record: "TypeAdapter[T] | None" = None,
    ) -> Cached[T]:
        """The fresh cached value, else one fetch shared by every caller on every replica.

        When the fetch fails with an upstream error, a copy up to `max_stale` seconds past its
        TTL is served with outcome `stale`; otherwise the error is raised. `record` is the
        value's type: what Redis holds is checked against it on the way in and out (an entry
        that does not fit is a miss); without it the value is JSON as is.
        """
        return await self._get(cache_key, fetch, ttl, max_stale, record)

    async def get_or_derive(
        self,
        cache_key: CacheKey,
        build: Callable[[], Awaitable[Derived[T]]],
        ttl: float,
        *,
        max_stale: float | None = None,
        record: "TypeAdapter[T] | None" = None,
    ) -> Cached[T]:
        """Like `get_or_fetch`, for a value built from other cached values (see `Derived`)."""
        return await self._get(cache_key, build, ttl, max_stale, record)

    async def _get(
        self,
        cache_key: CacheKey,
        fetch: Callable[[], Awaitable[Any]],
        ttl: float,
        max_stale: float | None,
        record: "TypeAdapter[Any] | None",
    ) -> Cached[Any]:
        """`_get_value`; with tracing on, in a span naming the key's system, account and outcome."""
        if not tracing.enabled():
            return await self._get_value(cache_key, fetch, ttl, max_stale, record)
        with tracing.span("cache.get", _key_attributes(cache_key)) as span:
            try:
                result = await self._get_value(cache_key, fetch, ttl, max_stale, record)
            except GatewayError as error:
                tracing.failed(span, error.code.value)
                raise
            if span is not None:
                span.set_attribute("qontract.cache.outcome", result.lookup.outcome)
            return result

    async def _get_value(
        self,
        cache_key: CacheKey,
        fetch: Callable[[], Awaitable[Any]],
        ttl: float,
        max_stale: float | None,
        record: "TypeAdapter[Any] | None",
    ) -> Cached[Any]:
        name = self.key_name(cache_key)
        entry = self._local.get(name)
        if entry is not None:
            self._count(cache_key, "hit")
            return self._found(
                cache_key, name, "hit", entry.value, entry.fetched_at, entry.subtrees
            )
        task = self._inflight.get(name)
        if task is None:
            stale_window = self._max_stale if max_stale is None else max_stale
            task = asyncio.ensure_future(
                self._lookup(cache_key, name, fetch, ttl, stale_window, record)
            )
            self._inflight[name] = task
            task.add_done_callback(lambda _: self._inflight.pop(name, None))
        try:
            result = await asyncio.shield(task)
        except Exception:
            self._count(cache_key, "error")
            raise
        self._count(cache_key, result.lookup.outcome)
        return result

    async def get_many(
        self, cache_keys: Iterable[CacheKey], record: "TypeAdapter[Any] | None" = None
    ) -> tuple[dict[CacheKey, Cached[Any]], list[CacheKey]]:
        """Fresh values of a batch (local tier, then one MGET per hash tag) and the keys missing."""
        found: dict[CacheKey, Cached[Any]] = {}
        remote: list[CacheKey] = []
        for cache_key in dict.fromkeys(cache_keys):
            name = self.key_name(cache_key)
            entry = self._local.get(name)
            if entry is None:
                remote.append(cache_key)
            else:
                found[cache_key] = self._found(
                    cache_key, name, "hit", entry.value, entry.fetched_at, entry.subtrees
                )
        self._count_batch(found, "hit")
        groups: dict[str, list[CacheKey]] = {}
        for cache_key in remote:
            groups.setdefault(cache_key.tag, []).append(cache_key)
        missing: list[CacheKey] = []
        if not groups:
            return found, missing
        with tracing.span("cache.mget", _batch_attributes(remote)):
            async with self._redis_errors():
                pipe = self._redis.pipeline(transaction=False)
                for group in groups.values():
                    pipe.mget([self.key_name(k) for k in group])
                replies = await pipe.execute()
        for group, raws in zip(groups.values(), replies, strict=True):
            for cache_key, raw in zip(group, raws, strict=True):
                stored = _decode(raw, record)
                if stored is None or stored.age() >= stored.ttl:
                    missing.append(cache_key)
                    self._count(cache_key, "miss")
                    continue
                found[cache_key] = self._fresh(cache_key, self.key_name(cache_key), stored, "hit")
                self._count(cache_key, "hit")
        return found, missing

    async def set_many(
        self,
        values: Mapping[CacheKey, Any],
        ttl: float,
        *,
        max_stale: float | None = None,
        record: "TypeAdapter[Any] | None" = None,
    ) -> None:
        """Store a batch of freshly fetched values in one pipeline."""
        stale_window = self._max_stale if max_stale is None else max_stale
        now = time.time()
        with tracing.span("cache.set", _batch_attributes(values)):
            async with self._redis_errors():
                pipe = self._redis.pipeline(transaction=False)
                for cache_key, value in values.items():
                    pipe.set(
                        self.key_name(cache_key),
                        _encode(_Stored(value, now, ttl), record),
                        px=ms(ttl + stale_window),
                    )
                await pipe.execute()
        for cache_key, value in values.items():
            self._local.put(self.key_name(cache_key), value, now, ttl)

    async def put(
        self,
        cache_key: CacheKey,
        value: T,
        ttl: float,
        *,
        max_stale: float | None = None,
        record: "TypeAdapter[T] | None" = None,
    ) -> None:
        """Store `value` as freshly fetched, e.g. after a reconcile action changed it."""
        self.writes += 1
        await self.set_many({cache_key: value}, ttl, max_stale=max_stale, record=record)

    async def invalidate(self, target: CacheKey | CachePrefix) -> None:
        """Delete one key, or every key under a prefix, from Redis and the local tier."""
        self.writes += 1
        if isinstance(target, CacheKey):
            name = self.key_name(target)
            self._local.drop(name)
            async with self._redis_errors():
                await self._redis.unlink(name)
            return
        prefix, pattern = self._prefix_names(target)
        self._local.drop_prefix(prefix)
        async with self._redis_errors():
            batch: list[bytes] = []
            async for name in self._redis.scan_iter(match=pattern, count=500):
                batch.append(name)
                if len(batch) >= 500:
                    await self._redis.unlink(*batch)
                    batch = []
            if batch:
                await self._redis.unlink(*batch)

    def _prefix_names(self, prefix: CachePrefix) -> tuple[str, str]:
        """The value-key prefix for the local tier and the SCAN pattern for Redis."""
        if prefix.account is None and prefix.data_type is not None:
            raise ValueError("a data type prefix needs its account")
        parts = [p for p in (prefix.system, prefix.account, prefix.data_type) if p is not None]
        return self._keys.values_under(tag(*parts), complete=prefix.data_type is not None)

    async def _lookup(
        self,
        cache_key: CacheKey,
        name: str,
        fetch: Callable[[], Awaitable[Any]],
        ttl: float,
        max_stale: float,
        record: "TypeAdapter[Any] | None",
    ) -> Cached[Any]:
        lock = self._lock_name(cache_key)
        deadline = time.monotonic() + self._wait_timeout
        last: _Stored | None = None
        async with self._redis_errors():
            while True:
                last = _decode(await self._redis.get(name), record) or last
                if last is not None and last.age() < ttl:
                    return self._fresh(cache_key, name, last, "hit")
                token = secrets.token_hex(16)
                if not await self._leases.acquire([lock], token, self._lease):
                    return await self._fetch_holding(
                        cache_key, name, lock, token, fetch, ttl, max_stale, record
                    )
                while await self._redis.exists(lock):
                    if time.monotonic() >= deadline:
                        return self._stale_or_raise(
                            cache_key,
                            name,
                            last,
                            ttl,
                            max_stale,
                            Timeout(f"{cache_key.system}: another replica's fetch took too long"),
                        )
                    await asyncio.sleep(self._poll_interval)
                    stored = _decode(await self._redis.get(name), record)
                    if stored is not None and stored.age() < ttl:
                        return self._fresh(cache_key, name, stored, "hit")

    async def _fetch_holding(
        self,
        cache_key: CacheKey,
        name: str,
        lock: str,
        token: str,
        fetch: Callable[[], Awaitable[Any]],
        ttl: float,
        max_stale: float,
        record: "TypeAdapter[Any] | None",
    ) -> Cached[Any]:
        renewer = asyncio.ensure_future(self._renew_lease(lock, token))
        try:
            stored = _decode(await self._redis.get(name), record)
            if stored is not None and stored.age() < ttl:
                return self._fresh(cache_key, name, stored, "hit")
            try:
                value = await fetch()
            except self._stale_on as exc:
                return self._stale_or_raise(cache_key, name, stored, ttl, max_stale, exc)
            if isinstance(value, Derived):
                if value.stale:
                    return self._found(
                        cache_key, name, "stale", value.value, time.time() - value.inputs_age
                    )
                fetched = _Stored(value.value, time.time(), ttl, value.inputs_age)
            else:
                fetched = _Stored(value, time.time(), ttl)
            await self._redis.set(name, _encode(fetched, record), px=ms(ttl + max_stale))
            return self._fresh(cache_key, name, fetched, "miss")
        finally:
            renewer.cancel()
            with contextlib.suppress(RedisConnectionError, RedisTimeoutError):
                await self._leases.release([lock], token)

    async def _renew_lease(self, lock: str, token: str) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            with contextlib.suppress(RedisConnectionError, RedisTimeoutError):
                await self._leases.renew([lock], token, self._lease)

    def _fresh(
        self, cache_key: CacheKey, name: str, stored: _Stored, outcome: Outcome
    ) -> Cached[Any]:
        subtrees = self._local.put(
            name, stored.value, stored.reported_at, stored.ttl - stored.age()
        )
        return self._found(cache_key, name, outcome, stored.value, stored.reported_at, subtrees)

    def _stale_or_raise(
        self,
        cache_key: CacheKey,
        name: str,
        stored: _Stored | None,
        ttl: float,
        max_stale: float,
        error: BaseException,
    ) -> Cached[Any]:
        if stored is None or stored.age() > ttl + max_stale:
            raise error
        return self._found(cache_key, name, "stale", stored.value, stored.reported_at)

    def _found(
        self,
        cache_key: CacheKey,
        name: str,
        outcome: Outcome,
        value: Any,
        fetched_at: float,
        subtrees: Subtrees | None = None,
    ) -> Cached[Any]:
        age = max(0.0, time.time() - fetched_at)
        lookup = CacheLookup(cache_key.system, name, outcome, age)
        return Cached(value, lookup) if subtrees is None else Cached(value, lookup, subtrees)

    def _count(self, cache_key: CacheKey, outcome: Outcome | Literal["error"]) -> None:
        self._metrics.lookups.labels(cache_key.system, cache_key.data_type, outcome).inc()

    def _count_batch(self, cache_keys: Iterable[CacheKey], outcome: Outcome) -> None:
        """Count lookups of a batch with one increment per system and data type."""
        counts = collections.Counter((k.system, k.data_type) for k in cache_keys)
        for (system, data_type), count in counts.items():
            self._metrics.lookups.labels(system, data_type, outcome).inc(count)

    @contextlib.asynccontextmanager
    async def _redis_errors(self) -> AsyncIterator[None]:
        try:
            yield
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise redis_unavailable(exc, "shared cache") from exc


def _key_attributes(cache_key: CacheKey) -> tracing.Attributes:
    """What a span may say of a key: never its identifier."""
    return {
        "qontract.system": cache_key.system,
        "qontract.account": cache_key.account,
        "qontract.cache.data_type": cache_key.data_type,
    }


def _batch_attributes(cache_keys: Iterable[CacheKey]) -> tracing.Attributes | None:
    """The first key's attributes and the batch size, or None when tracing is off."""
    if not tracing.enabled():
        return None
    keys = list(cache_keys)
    return {**_key_attributes(keys[0]), "qontract.cache.keys": len(keys)} if keys else None


def _encode(stored: _Stored, record: "TypeAdapter[Any] | None") -> str:
    value = stored.value
    if record is not None:  # by alias: what the record's type reads back
        value = record.dump_python(value, mode="json", by_alias=True)
    data = {"t": stored.fetched_at, "ttl": stored.ttl, "v": value}
    if stored.inputs_age:
        data["a"] = stored.inputs_age
    return json.dumps(data, separators=(",", ":"))


def _decode(raw: bytes | str | None, record: "TypeAdapter[Any] | None" = None) -> _Stored | None:
    """The stored record, or None for no entry or one this replica cannot read (a miss)."""
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        value = data["v"] if record is None else record.validate_python(data["v"])
        return _Stored(value, float(data["t"]), float(data["ttl"]), float(data.get("a", 0.0)))
    except (ValueError, TypeError, KeyError):
        return None


async def _split(
    cache: Cache, cache_keys: Iterable[CacheKey], record: "TypeAdapter[Any] | None"
) -> tuple[dict[CacheKey, "Cached[Any] | GatewayError"], list[CacheKey]]:
    """Fresh values of a batch and the keys to fetch; with Redis down, every key is to fetch.

    Each key to fetch then goes through `get_or_fetch`, which serves its in-process copy or
    fails on its own: a Redis outage becomes an error per item, not one for the whole batch.
    """
    keys = list(dict.fromkeys(cache_keys))
    try:
        found, missing = await cache.get_many(keys, record)
    except UpstreamUnavailable:
        return {}, keys
    return dict(found), missing


async def _fill(
    cache: Cache,
    results: dict[CacheKey, "Cached[T] | GatewayError"],
    missing: list[CacheKey],
    lookup: Callable[[CacheKey], Awaitable[Cached[T]]],
) -> None:
    """One shared lookup per missing key, `cache.batch_concurrency` at a time; a key whose
    lookup fails maps to its error."""
    slots = asyncio.Semaphore(cache.batch_concurrency)

    async def one(cache_key: CacheKey) -> None:
        async with slots:
            try:
                results[cache_key] = await lookup(cache_key)
            except GatewayError as error:
                results[cache_key] = error

    await asyncio.gather(*(one(cache_key) for cache_key in missing))


async def get_or_fetch_many(
    cache: Cache,
    cache_keys: Iterable[CacheKey],
    fetch: Callable[[CacheKey], Awaitable[T]],
    ttl: float,
    record: "TypeAdapter[T] | None" = None,
) -> dict[CacheKey, "Cached[T] | GatewayError"]:
    """Values of a batch: one MGET for what is cached, one shared fetch per missing key.

    A key whose fetch fails maps to its error, so one unknown id does not fail the batch.
    """

    def lookup(key: CacheKey) -> Awaitable[Cached[T]]:
        return cache.get_or_fetch(key, lambda: fetch(key), ttl, record=record)

    return await _many(cache, cache_keys, lookup, record)


async def get_or_derive_many(
    cache: Cache,
    cache_keys: Iterable[CacheKey],
    build: Callable[[CacheKey], Awaitable[Derived[T]]],
    ttl: float,
    record: "TypeAdapter[T] | None" = None,
) -> dict[CacheKey, "Cached[T] | GatewayError"]:
    """Like `get_or_fetch_many`, for values built from other cached values (see `Derived`)."""

    def lookup(key: CacheKey) -> Awaitable[Cached[T]]:
        return cache.get_or_derive(key, lambda: build(key), ttl, record=record)

    return await _many(cache, cache_keys, lookup, record)


async def _many(
    cache: Cache,
    cache_keys: Iterable[CacheKey],
    lookup: Callable[[CacheKey], Awaitable[Cached[T]]],
    record: "TypeAdapter[T] | None",
) -> dict[CacheKey, "Cached[T] | GatewayError"]:
    results, missing = await _split(cache, cache_keys, record)
    await _fill(cache, results, missing, lookup)
    return results


async def get_or_fetch_batch(
    cache: Cache,
    cache_keys: Iterable[CacheKey],
    fetch_many: Callable[[list[CacheKey]], Awaitable[Mapping[CacheKey, T | GatewayError]]],
    ttl: float,
    record: "TypeAdapter[T] | None" = None,
) -> dict[CacheKey, "Cached[T] | GatewayError"]:
    """Like `get_or_fetch_many`, for upstreams that return many keys in one call.

    The keys missing from the cache are fetched together, at most once per call, while each
    key keeps its own single flight, stale copy and error; a key `fetch_many` leaves out is
    an internal error, so it must map every key it is given to a value or an error.
    """
    results, missing = await _split(cache, cache_keys, record)
    batch: list[asyncio.Future[Mapping[CacheKey, T | GatewayError]]] = []

    async def fetch(cache_key: CacheKey) -> T:
        if not batch:
            batch.append(asyncio.ensure_future(fetch_many(missing)))
        value = (await asyncio.shield(batch[0]))[cache_key]
        if isinstance(value, GatewayError):
            raise value
        return value

    await _fill(
        cache,
        results,
        missing,
        lambda key: cache.get_or_fetch(key, lambda: fetch(key), ttl, record=record),
    )
    return results
