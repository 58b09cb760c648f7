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
from redis.commands.core import AsyncScript
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

# KEYS: (value, lock) pairs of one hash tag. ARGV: token, lease ms. Takes every free lock for
# the token; returns per pair the value (nil when none) and 1 when this call took the lock.
_CLAIM = """
local found = {}
for i = 1, #KEYS, 2 do
  local took = redis.call('SET', KEYS[i + 1], ARGV[1], 'NX', 'PX', ARGV[2])
  table.insert(found, redis.call('GET', KEYS[i]))
  table.insert(found, took and 1 or 0)
end
return found
"""

# KEYS: (value, lock) pairs of one hash tag. Returns per pair the value and 1 while locked.
_WATCH = """
local found = {}
for i = 1, #KEYS, 2 do
  table.insert(found, redis.call('GET', KEYS[i]))
  table.insert(found, redis.call('EXISTS', KEYS[i + 1]))
end
return found
"""

# KEYS: (value, lock) pairs of one hash tag. ARGV: token, PX, then per pair the encoded value
# ('' to store nothing). Stores the values and frees the locks the token still holds.
_STORE = """
for i = 1, #KEYS, 2 do
  local value = ARGV[2 + (i + 1) / 2]
  if value ~= '' then redis.call('SET', KEYS[i], value, 'PX', ARGV[2]) end
  if redis.call('GET', KEYS[i + 1]) == ARGV[1] then redis.call('DEL', KEYS[i + 1]) end
end
return 1
"""

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


FetchOwned = Callable[[list[CacheKey]], Awaitable[Mapping[CacheKey, Any]]]
"""Fetches the keys a caller holds the leases of: per key a value, a `Derived` or the exception
its fetch raised (a key left out is an internal error)."""


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


_LEFT_OUT = object()
"""What a batch fetch gave for a key it left out."""


@dataclass
class _Fill:
    """One lookup of keys missing from Redis: the futures it resolves for every caller in the
    process and what it needs to fetch, store and wait."""

    futures: dict[CacheKey, "asyncio.Future[Cached[Any]]"]
    names: dict[CacheKey, tuple[str, str]]
    """Each key's value and lock names in Redis."""
    inflight: dict[str, "asyncio.Future[Cached[Any]]"]
    """The cache's lookups in flight in this process, by value name: a key leaves on settling."""
    fetch: FetchOwned
    ttl: float
    max_stale: float
    record: "TypeAdapter[Any] | None"
    token: str
    deadline: float
    last: dict[CacheKey, _Stored] = field(default_factory=dict)

    def resolve(self, cache_key: CacheKey, result: "Cached[Any] | BaseException") -> None:
        """Settle `cache_key` with its value or error, unless it is settled already."""
        future = self.futures[cache_key]
        if future.done():
            return
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
        self._forget(cache_key)

    def fail_open(self, error: BaseException | None) -> None:
        """Settle every key still open with `error`, or cancel it (None)."""
        for cache_key, future in self.futures.items():
            if error is not None:
                self.resolve(cache_key, error)
            elif not future.done():
                future.cancel()
                self._forget(cache_key)

    def _forget(self, cache_key: CacheKey) -> None:
        name = self.names[cache_key][0]
        if self.inflight.get(name) is self.futures[cache_key]:
            del self.inflight[name]


def _by_tag(cache_keys: Iterable[CacheKey]) -> dict[str, list[CacheKey]]:
    """`cache_keys` grouped by hash tag (one Redis Cluster slot each)."""
    groups: dict[str, list[CacheKey]] = {}
    for cache_key in cache_keys:
        groups.setdefault(cache_key.tag, []).append(cache_key)
    return groups


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
        self._inflight: dict[str, asyncio.Future[Cached[Any]]] = {}
        self.writes = 0
        self._keys = CacheKeys(namespace)
        self._leases = OwnedLeases(redis)
        self._claim = redis.register_script(_CLAIM)
        self._watch = redis.register_script(_WATCH)
        self._store = redis.register_script(_STORE)

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
        async def fetch_one(keys: list[CacheKey]) -> dict[CacheKey, Any]:
            try:
                return {cache_key: await fetch()}
            except Exception as error:  # delivered to every caller sharing the fetch
                return {cache_key: error}

        found = await self._settle_all(
            [cache_key], fetch_one, ttl, max_stale, record, read_first=True
        )
        result = found[cache_key]
        if isinstance(result, GatewayError):
            raise result
        return result

    async def fill(
        self,
        cache_keys: Iterable[CacheKey],
        fetch_owned: FetchOwned,
        ttl: float,
        *,
        max_stale: float | None = None,
        record: "TypeAdapter[Any] | None" = None,
    ) -> dict[CacheKey, "Cached[Any] | GatewayError"]:
        """Values of keys found missing from Redis (see `get_many`), in a few round trips.

        One script per hash tag takes the single-flight lease of every key no one holds and
        reads what Redis has now; `fetch_owned` is called once with the keys this call holds;
        one script per hash tag stores their values and frees the leases. Keys another caller
        holds are waited for (polled together) and taken over when their holder gives up, as
        in `get_or_fetch`. A key whose fetch fails maps to its stale copy or its error.
        """
        keys = list(dict.fromkeys(cache_keys))
        attributes = _batch_attributes(keys)
        if attributes is None:
            return await self._settle_all(
                keys, fetch_owned, ttl, max_stale, record, read_first=False
            )
        with tracing.span("cache.get", attributes) as span:
            found = await self._settle_all(
                keys, fetch_owned, ttl, max_stale, record, read_first=False
            )
            if span is not None:  # one outcome, or those of the batch joined with commas
                outcomes = {
                    "error" if isinstance(r, GatewayError) else r.lookup.outcome
                    for r in found.values()
                }
                span.set_attribute("qontract.cache.outcome", ",".join(sorted(outcomes)))
            return found

    async def _settle_all(
        self,
        cache_keys: list[CacheKey],
        fetch_owned: FetchOwned,
        ttl: float,
        max_stale: float | None,
        record: "TypeAdapter[Any] | None",
        *,
        read_first: bool,
    ) -> dict[CacheKey, "Cached[Any] | GatewayError"]:
        """Local copies, else the lookup in flight in this process, else one of our own for
        all the remaining keys; counts each key's outcome."""
        results: dict[CacheKey, Cached[Any] | GatewayError] = {}
        shared: dict[CacheKey, asyncio.Future[Cached[Any]]] = {}
        mine: dict[CacheKey, asyncio.Future[Cached[Any]]] = {}
        names: dict[CacheKey, tuple[str, str]] = {}
        loop = asyncio.get_running_loop()
        for cache_key in cache_keys:
            name = self.key_name(cache_key)
            entry = self._local.get(name)
            if entry is not None:
                results[cache_key] = self._found(
                    cache_key, name, "hit", entry.value, entry.fetched_at, entry.subtrees
                )
                continue
            future = self._inflight.get(name)
            if future is None:
                future = mine[cache_key] = self._inflight[name] = loop.create_future()
                names[cache_key] = (name, self._lock_name(cache_key))
            else:
                shared[cache_key] = future
        if mine:
            fill = _Fill(
                mine,
                names,
                self._inflight,
                fetch_owned,
                ttl,
                self._max_stale if max_stale is None else max_stale,
                record,
                secrets.token_hex(16),
                time.monotonic() + self._wait_timeout,
            )
            await asyncio.shield(asyncio.ensure_future(self._settle(fill, read_first)))
        outcomes = await asyncio.gather(
            *(asyncio.shield(future) for future in shared.values()), return_exceptions=True
        )
        settled = [*zip(shared, outcomes, strict=True)]
        settled += [(k, future.exception() or future.result()) for k, future in mine.items()]
        for cache_key, result in settled:
            if isinstance(result, BaseException) and not isinstance(result, GatewayError):
                raise result
            results[cache_key] = result
        by_outcome: dict[Outcome | Literal["error"], list[CacheKey]] = {}
        for cache_key, found in results.items():
            outcome = "error" if isinstance(found, GatewayError) else found.lookup.outcome
            by_outcome.setdefault(outcome, []).append(cache_key)
        for counted, keys in by_outcome.items():
            self._count_batch(keys, counted)
        return results

    async def get_many(
        self, cache_keys: Iterable[CacheKey], record: "TypeAdapter[Any] | None" = None
    ) -> tuple[dict[CacheKey, Cached[Any]], list[CacheKey]]:
        """Fresh values of a batch (local tier, then one MGET per hash tag) and the keys missing."""
        found: dict[CacheKey, Cached[Any]] = {}
        remote: dict[CacheKey, str] = {}
        for cache_key in dict.fromkeys(cache_keys):
            name = self.key_name(cache_key)
            entry = self._local.get(name)
            if entry is None:
                remote[cache_key] = name
            else:
                found[cache_key] = self._found(
                    cache_key, name, "hit", entry.value, entry.fetched_at, entry.subtrees
                )
        self._count_batch(found, "hit")
        groups = _by_tag(remote)
        missing: list[CacheKey] = []
        if not groups:
            return found, missing
        with tracing.span("cache.mget", _batch_attributes(remote)):
            async with self._redis_errors():
                pipe = self._redis.pipeline(transaction=False)
                for group in groups.values():
                    pipe.mget([remote[k] for k in group])
                replies = await pipe.execute()
        for group, raws in zip(groups.values(), replies, strict=True):
            for cache_key, raw in zip(group, raws, strict=True):
                stored = _decode(raw, record)
                if stored is None or stored.age() >= stored.ttl:
                    missing.append(cache_key)
                    continue
                found[cache_key] = self._fresh(cache_key, remote[cache_key], stored, "hit")
        self._count_batch(missing, "miss")
        self._count_batch((k for k in remote if k in found), "hit")
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

    async def _settle(self, fill: "_Fill", read_first: bool) -> None:
        """Resolve every future of `fill`: read (when the batch has not been read yet), take
        the leases, fetch, store, wait for the others' keys; Redis failing fails the keys still
        open with `UPSTREAM_UNAVAILABLE`."""
        try:
            async with self._redis_errors():
                keys = list(fill.futures)
                if read_first:
                    keys = await self._read(fill, keys)
                if keys:
                    await self._round(fill, keys)
        except Exception as error:
            fill.fail_open(error)
        finally:  # cancelled (the loop is closing): nothing is left to wait for
            fill.fail_open(None)

    async def _read(self, fill: "_Fill", keys: list[CacheKey]) -> list[CacheKey]:
        """Resolve the keys Redis holds fresh values of; the others (to claim)."""
        pipe = self._redis.pipeline(transaction=False)
        for group in _by_tag(keys).values():
            pipe.mget([fill.names[k][0] for k in group])
        replies = await pipe.execute()
        missing = []
        for group, raws in zip(_by_tag(keys).values(), replies, strict=True):
            for cache_key, raw in zip(group, raws, strict=True):
                if not self._resolve_fresh(fill, cache_key, raw):
                    missing.append(cache_key)
        return missing

    def _resolve_fresh(self, fill: "_Fill", cache_key: CacheKey, raw: bytes | None) -> bool:
        """Resolve `cache_key` when `raw` is a fresh value, else remember it as its stale copy."""
        stored = _decode(raw, fill.record) or fill.last.get(cache_key)
        if stored is not None and stored.age() < fill.ttl:
            fill.resolve(cache_key, self._fresh(cache_key, fill.names[cache_key][0], stored, "hit"))
            return True
        if stored is not None:
            fill.last[cache_key] = stored
        return False

    async def _round(self, fill: "_Fill", keys: list[CacheKey]) -> None:
        """Take the free leases of `keys` (one script per hash tag); fetch those taken, wait
        for the others."""
        replies = await self._per_tag(self._claim, fill, keys, [fill.token, ms(self._lease)])
        owned: list[CacheKey] = []
        freed: list[CacheKey] = []
        waiting: list[CacheKey] = []
        for cache_key, (raw, took) in replies.items():
            if self._resolve_fresh(fill, cache_key, raw):
                if took:
                    freed.append(cache_key)  # fresh after all: give its lease back
            else:
                (owned if took else waiting).append(cache_key)
        await asyncio.gather(self._own(fill, owned, freed), self._await_others(fill, waiting))

    async def _own(self, fill: "_Fill", owned: list[CacheKey], freed: list[CacheKey]) -> None:
        """Fetch the keys whose leases this call holds (renewed meanwhile), store the values
        and free every lease in one script per hash tag."""
        if not owned and not freed:
            return
        fetched: Mapping[CacheKey, Any] = {}
        if owned:
            renewer = asyncio.ensure_future(self._renew_leases(fill, owned))
            try:
                fetched = await fill.fetch(owned)
            finally:
                renewer.cancel()
        to_store: dict[CacheKey, _Stored] = {}
        for cache_key in owned:
            name = fill.names[cache_key][0]
            value = fetched.get(cache_key, _LEFT_OUT)
            if value is _LEFT_OUT:
                fill.resolve(cache_key, LookupError(f"{cache_key.system}: a fetch left a key out"))
            elif isinstance(value, self._stale_on):
                fill.resolve(cache_key, self._stale_or(fill, cache_key, value))
            elif isinstance(value, BaseException):
                fill.resolve(cache_key, value)
            elif isinstance(value, Derived) and value.stale:
                reported_at = time.time() - value.inputs_age
                fill.resolve(
                    cache_key, self._found(cache_key, name, "stale", value.value, reported_at)
                )
            elif isinstance(value, Derived):
                to_store[cache_key] = _Stored(value.value, time.time(), fill.ttl, value.inputs_age)
            else:
                to_store[cache_key] = _Stored(value, time.time(), fill.ttl)
        px = ms(fill.ttl + fill.max_stale)
        payloads: dict[CacheKey, str] = {}
        for cache_key, stored in list(to_store.items()):
            try:
                payloads[cache_key] = _encode(stored, fill.record)
            except (TypeError, ValueError) as error:  # not its record's type: an internal error
                fill.resolve(cache_key, error)
                del to_store[cache_key]
        values = {k: payloads.get(k, "") for k in [*owned, *freed]}
        try:
            async with self._redis_errors():
                await self._per_tag(self._store, fill, list(values), [fill.token, px], values)
        except UpstreamUnavailable as error:
            for cache_key in to_store:
                fill.resolve(cache_key, error)
            return
        for cache_key, stored in to_store.items():
            fill.resolve(
                cache_key, self._fresh(cache_key, fill.names[cache_key][0], stored, "miss")
            )

    async def _await_others(self, fill: "_Fill", waiting: list[CacheKey]) -> None:
        """Poll the keys other callers hold (one script per hash tag per interval) until their
        values arrive; claim again those whose holder gave up; stale copy or `Timeout` past
        the deadline."""
        takeovers: list[asyncio.Future[None]] = []
        while waiting:
            if time.monotonic() >= fill.deadline:
                for cache_key in waiting:
                    late = Timeout(f"{cache_key.system}: another replica's fetch took too long")
                    fill.resolve(cache_key, self._stale_or(fill, cache_key, late))
                break
            await asyncio.sleep(self._poll_interval)
            replies = await self._per_tag(self._watch, fill, waiting, [])
            waiting, given_up = [], list[CacheKey]()
            for cache_key, (raw, locked) in replies.items():
                if not self._resolve_fresh(fill, cache_key, raw):
                    (waiting if locked else given_up).append(cache_key)
            if given_up:
                takeovers.append(asyncio.ensure_future(self._round(fill, given_up)))
        await asyncio.gather(*takeovers)

    async def _per_tag(
        self,
        script: "AsyncScript",
        fill: "_Fill",
        keys: list[CacheKey],
        args: list[str | int],
        per_key: Mapping[CacheKey, str] | None = None,
    ) -> dict[CacheKey, tuple[Any, Any]]:
        """Run `script` once per hash tag (concurrently) over the (value, lock) pairs of `keys`,
        with `args` then each key's `per_key` argument; its replies per key, in pairs."""
        groups = list(_by_tag(keys).values())
        replies = await asyncio.gather(
            *(
                script(
                    keys=[name for k in group for name in fill.names[k]],
                    args=[*args, *(per_key[k] for k in group)] if per_key else args,
                )
                for group in groups
            )
        )
        paired: dict[CacheKey, tuple[Any, Any]] = {}
        for group, reply in zip(groups, replies, strict=True):
            if isinstance(reply, list):
                for index, cache_key in enumerate(group):
                    paired[cache_key] = (reply[2 * index], reply[2 * index + 1])
        return paired

    async def _renew_leases(self, fill: "_Fill", keys: list[CacheKey]) -> None:
        """Extend the leases of `keys` every third of a lease while their fetch runs."""
        groups = [[fill.names[k][1] for k in group] for group in _by_tag(keys).values()]
        while True:
            await asyncio.sleep(self._lease / 3)
            with contextlib.suppress(RedisConnectionError, RedisTimeoutError):
                await asyncio.gather(
                    *(self._leases.renew(locks, fill.token, self._lease) for locks in groups)
                )

    def _stale_or(
        self, fill: "_Fill", cache_key: CacheKey, error: BaseException
    ) -> "Cached[Any] | BaseException":
        """The key's copy (outcome `stale`) while within `max_stale` past its TTL, else `error`."""
        stored = fill.last.get(cache_key)
        if stored is None or stored.age() > fill.ttl + fill.max_stale:
            return error
        name = self.key_name(cache_key)
        return self._found(cache_key, name, "stale", stored.value, stored.reported_at)

    def _fresh(
        self, cache_key: CacheKey, name: str, stored: _Stored, outcome: Outcome
    ) -> Cached[Any]:
        subtrees = self._local.put(
            name, stored.value, stored.reported_at, stored.ttl - stored.age()
        )
        return self._found(cache_key, name, outcome, stored.value, stored.reported_at, subtrees)

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

    def _count_batch(
        self, cache_keys: Iterable[CacheKey], outcome: Outcome | Literal["error"]
    ) -> None:
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

    The keys to fetch then go through `Cache.fill`, which serves their in-process copies or
    fails each on its own: a Redis outage becomes an error per item, not one for the batch.
    """
    keys = list(dict.fromkeys(cache_keys))
    try:
        found, missing = await cache.get_many(keys, record)
    except UpstreamUnavailable:
        return {}, keys
    return dict(found), missing


def _each(
    cache: Cache, fetch: Callable[[CacheKey], Awaitable[Any]]
) -> Callable[[list[CacheKey]], Awaitable[dict[CacheKey, Any]]]:
    """A `FetchOwned` calling `fetch` per key, `cache.batch_concurrency` at a time."""

    async def fetch_each(cache_keys: list[CacheKey]) -> dict[CacheKey, Any]:
        slots = asyncio.Semaphore(cache.batch_concurrency)

        async def one(cache_key: CacheKey) -> Any:
            async with slots:
                try:
                    return await fetch(cache_key)
                except Exception as error:  # the key's outcome, see `FetchOwned`
                    return error

        values = await asyncio.gather(*(one(cache_key) for cache_key in cache_keys))
        return dict(zip(cache_keys, values, strict=True))

    return fetch_each


async def _many(
    cache: Cache,
    cache_keys: Iterable[CacheKey],
    fetch_owned: FetchOwned,
    ttl: float,
    record: "TypeAdapter[T] | None",
) -> dict[CacheKey, "Cached[T] | GatewayError"]:
    """Fresh values from one MGET per hash tag, then `Cache.fill` for the keys missing."""
    results, missing = await _split(cache, cache_keys, record)
    if missing:
        results.update(await cache.fill(missing, fetch_owned, ttl, record=record))
    return results


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
    return await _many(cache, cache_keys, _each(cache, fetch), ttl, record)


async def get_or_derive_many(
    cache: Cache,
    cache_keys: Iterable[CacheKey],
    build: Callable[[CacheKey], Awaitable[Derived[T]]],
    ttl: float,
    record: "TypeAdapter[T] | None" = None,
) -> dict[CacheKey, "Cached[T] | GatewayError"]:
    """Like `get_or_fetch_many`, for values built from other cached values (see `Derived`)."""
    return await _many(cache, cache_keys, _each(cache, build), ttl, record)


async def get_or_fetch_batch(
    cache: Cache,
    cache_keys: Iterable[CacheKey],
    fetch_many: Callable[[list[CacheKey]], Awaitable[Mapping[CacheKey, T | GatewayError]]],
    ttl: float,
    record: "TypeAdapter[T] | None" = None,
) -> dict[CacheKey, "Cached[T] | GatewayError"]:
    """Like `get_or_fetch_many`, for upstreams that return many keys in one call.

    The keys missing from the cache whose leases this call takes are fetched together (again,
    together, for keys it takes over from a holder that gave up), while each key keeps its own
    single flight, stale copy and error; a key `fetch_many` leaves out is an internal error,
    so it must map every key it is given to a value or an error.
    """

    async def fetch_together(keys: list[CacheKey]) -> Mapping[CacheKey, Any]:
        try:
            return await fetch_many(keys)
        except Exception as error:  # every key's outcome, see `FetchOwned`
            return dict.fromkeys(keys, error)

    return await _many(cache, cache_keys, fetch_together, ttl, record)
