"""The cache's batched miss path against a real Redis (counted with MONITOR) and an emulated
upstream over HTTP: a few round trips per batch, one fetch per key across replicas."""

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis

from gateway.cache import Cached, CacheKey, get_or_fetch_batch, get_or_fetch_many
from gateway.errors import GatewayError, UpstreamUnavailable
from gateway.redis_keys import CacheKeys
from gateway.upstream import UpstreamClient, UpstreamPath, UpstreamPolicy
from tests.emulators.base import UpstreamEmulator
from tests.primitives.conftest import ReplicaFactory
from tests.primitives.test_cache import older_than, start_holder
from tests.support.redis_server import PrivateRedis
from tests.support.wait import async_wait_until

NO_RETRY = UpstreamPolicy(max_attempts=1)
END = "qgw-monitor-end"


def items(count: int, start: int = 0) -> list[CacheKey]:
    """Keys of `count` emulated items from id `start` (one hash tag)."""
    return [CacheKey("emulated", "app-sre", "item", str(n)) for n in range(start, start + count)]


def fetch_item(client: UpstreamClient) -> Callable[[CacheKey], Awaitable[Any]]:
    """A fetch of one key's item from the emulator."""

    async def fetch(cache_key: CacheKey) -> Any:
        path = UpstreamPath("/items/{}", cache_key.ident)
        return (await client.request("test.get", "GET", path)).json()

    return fetch


def fetch_items(
    client: UpstreamClient,
) -> Callable[[list[CacheKey]], Awaitable[dict[CacheKey, Any]]]:
    """A batch fetch: every key's item from the emulator; a failed call is that key's error."""
    fetch = fetch_item(client)

    async def one(cache_key: CacheKey) -> Any:
        try:
            return await fetch(cache_key)
        except GatewayError as error:
            return error

    async def fetch_many(keys: list[CacheKey]) -> dict[CacheKey, Any]:
        return dict(zip(keys, await asyncio.gather(*(one(k) for k in keys)), strict=True))

    return fetch_many


@asynccontextmanager
async def monitored(redis_url: str, namespace: str) -> AsyncIterator[list[str]]:
    """The commands clients send Redis (scripts' own calls left out) on this namespace's cache
    keys while the block runs, as MONITOR reports them."""
    seen: list[str] = []
    watcher = Redis.from_url(redis_url)
    marker = Redis.from_url(redis_url)
    try:
        async with watcher.monitor() as monitor:
            listening = monitor.listen()

            async def collect() -> None:
                async for command in listening:
                    text = command["command"]
                    if END in text:
                        return
                    if command["client_type"] != "lua" and f"{namespace}:cache:" in text:
                        seen.append(text)

            collector = asyncio.ensure_future(collect())
            yield seen
            await marker.echo(END)
            await asyncio.wait_for(collector, timeout=10)
    finally:
        await marker.aclose()
        await watcher.aclose()


async def test_cold_batch_takes_the_same_few_redis_round_trips_for_10_or_200_keys(
    replicas: ReplicaFactory, emulator: UpstreamEmulator, redis_url: str, namespace: str
) -> None:
    replica = replicas()
    fetch_many = fetch_items(replica.client)
    await get_or_fetch_batch(replica.cache, items(1, 10_000), fetch_many, 60)  # scripts loaded
    sent: dict[int, list[str]] = {}
    for count, start in ((10, 0), (200, 100)):
        async with monitored(redis_url, namespace) as commands:
            found = await get_or_fetch_batch(replica.cache, items(count, start), fetch_many, 60)
        assert {k.ident: r.value["id"] for k, r in found.items() if isinstance(r, Cached)} == {
            k.ident: k.ident for k in items(count, start)
        }
        assert {r.lookup.outcome for r in found.values() if isinstance(r, Cached)} == {"miss"}
        sent[count] = commands
    # one MGET, one script taking every lease, one script storing every value and lease
    assert [c.split()[0] for c in sent[200]] == ["MGET", "EVALSHA", "EVALSHA"], sent[200]
    assert len(sent[10]) == len(sent[200])
    assert emulator.total_calls() == 211


async def test_batches_on_3_replicas_fetch_each_key_exactly_once(
    replicas: ReplicaFactory, emulator: UpstreamEmulator
) -> None:
    three = [replicas(), replicas(), replicas()]
    emulator.slow(0.3, times=5)
    keys = items(60)
    rng = random.Random(15)

    async def caller(n: int) -> dict[CacheKey, Any]:
        replica = three[n % 3]
        chosen = rng.sample(keys, 30)
        if n % 4 == 0:  # single-key callers share the flight with the batches
            fetch = fetch_item(replica.client)
            one = await replica.cache.get_or_fetch(chosen[0], lambda: fetch(chosen[0]), 60)
            return {chosen[0]: one}
        if n % 2:
            return await get_or_fetch_batch(replica.cache, chosen, fetch_items(replica.client), 60)
        return await get_or_fetch_many(replica.cache, chosen, fetch_item(replica.client), 60)

    answers = await asyncio.gather(*(caller(n) for n in range(60)))
    asked = {k for answer in answers for k in answer}
    for cache_key in asked:
        assert emulator.calls[f"GET /items/{cache_key.ident}"] == 1, cache_key
    assert emulator.total_calls() == len(asked)
    assert all(not isinstance(r, GatewayError) for answer in answers for r in answer.values()), (
        answers
    )


async def test_batch_takes_over_the_key_of_a_killed_holder_and_fetches_the_rest_at_once(
    replicas: ReplicaFactory, emulator: UpstreamEmulator, redis_url: str, namespace: str
) -> None:
    lease = 1.0
    holder = await start_holder(redis_url, namespace, lease)
    survivor = replicas(lease=lease)
    held, free = CacheKey("emulated", "app-sre", "item", "42"), items(3, 1000)
    try:

        async def holder_locked() -> bool:
            return bool(await survivor.redis.exists(CacheKeys(namespace).lock(held.tag, "42")))

        await async_wait_until(holder_locked, timeout=20, what="the holder to take the lock")
        batch = asyncio.ensure_future(
            get_or_fetch_batch(survivor.cache, [held, *free], fetch_items(survivor.client), 60)
        )

        async def rest_fetched() -> bool:
            return emulator.total_calls() == len(free)

        await async_wait_until(rest_fetched, timeout=10, what="the free keys to be fetched")
        assert not batch.done(), "the held key is waited for"
        assert emulator.total_calls("GET /items/42") == 0
    finally:
        holder.kill()
        await holder.wait()
    found = await asyncio.wait_for(batch, timeout=lease + 5)
    assert {k.ident: r.lookup.outcome for k, r in found.items() if isinstance(r, Cached)} == {
        k.ident: "miss" for k in [held, *free]
    }
    assert emulator.total_calls() == len(free) + 1


async def test_batch_serves_stale_copies_and_errors_per_key_when_the_upstream_fails(
    replicas: ReplicaFactory, emulator: UpstreamEmulator, namespace: str
) -> None:
    replica = replicas(policy=NO_RETRY)
    copied, uncopied = items(2, 500)
    await replica.cache.set_many({copied: {"id": copied.ident}}, ttl=0.2, max_stale=60)
    await older_than(0.2, time.monotonic())
    emulator.fail(500, times=2)
    found = await get_or_fetch_batch(
        replica.cache, [copied, uncopied], fetch_items(replica.client), 0.2
    )
    stale = found[copied]
    assert isinstance(stale, Cached)
    assert (stale.value, stale.lookup.outcome) == ({"id": copied.ident}, "stale")
    assert isinstance(found[uncopied], UpstreamUnavailable)
    locks = [CacheKeys(namespace).lock(k.tag, k.ident) for k in (copied, uncopied)]
    assert await replica.redis.exists(*locks) == 0, "both leases are freed"


async def test_batch_with_redis_down_is_an_error_per_key_and_no_upstream_call(
    replicas: ReplicaFactory, emulator: UpstreamEmulator
) -> None:
    with PrivateRedis() as server:
        replica = replicas(url=server.url, local_ttl=30)
        local = items(1, 700)[0]
        await get_or_fetch_batch(replica.cache, [local], fetch_items(replica.client), 60)
        server.stop()
        keys = items(3, 800)
        async with asyncio.timeout(5):
            found = await get_or_fetch_batch(
                replica.cache, [local, *keys], fetch_items(replica.client), 60
            )
        served = found[local]
        assert isinstance(served, Cached), "the in-process copy is still served"
        assert served.lookup.outcome == "hit"
        for cache_key in keys:
            error = found[cache_key]
            assert isinstance(error, UpstreamUnavailable)
            assert "shared cache (Redis) unreachable" in str(error)
        assert emulator.total_calls() == 1
