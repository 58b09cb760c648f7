"""The two-tier cache against a real Redis and an emulated upstream over HTTP."""

import asyncio
import os
import sys
import time
from typing import Any

import pytest

from gateway.cache import CacheKey, CachePrefix
from gateway.errors import UpstreamUnavailable
from gateway.redis_keys import CacheKeys
from gateway.upstream import UpstreamClient, UpstreamPath, UpstreamPolicy
from tests.emulators.base import UpstreamEmulator
from tests.primitives.conftest import SECRET, ReplicaFactory
from tests.support.redis_server import PrivateRedis
from tests.support.wait import async_wait_until

ITEM = CacheKey("emulated", "app-sre", "item", "42")
NO_RETRY = UpstreamPolicy(max_attempts=1)


def fetch_json(client: UpstreamClient, path: str) -> Any:
    """A fetch function that GETs `path` from the emulator and returns its JSON body."""

    async def fetch() -> Any:
        return (await client.request("test.get", "GET", UpstreamPath(path))).json()

    return fetch


async def older_than(seconds: float, age_at: float) -> None:
    """Wait until `seconds` have passed since monotonic instant `age_at`."""

    async def passed() -> bool:
        return time.monotonic() - age_at > seconds

    await async_wait_until(passed, timeout=seconds + 5, what=f"{seconds}s to pass")


async def test_empty_list_is_cached_as_a_result(
    replicas: ReplicaFactory, emulator: UpstreamEmulator
) -> None:
    replica = replicas()
    empty = CacheKey("emulated", "app-sre", "list", "none")
    first = await replica.cache.get_or_fetch(empty, fetch_json(replica.client, "/empty"), ttl=60)
    second = await replica.cache.get_or_fetch(empty, fetch_json(replica.client, "/empty"), ttl=60)
    assert (first.value, first.lookup.outcome) == ([], "miss")
    assert (second.value, second.lookup.outcome) == ([], "hit")
    assert emulator.total_calls("GET /empty") == 1


async def test_value_is_fetched_again_after_its_ttl(
    replicas: ReplicaFactory, emulator: UpstreamEmulator
) -> None:
    replica = replicas()
    fetch = fetch_json(replica.client, "/items/42")
    await replica.cache.get_or_fetch(ITEM, fetch, ttl=0.3)
    fetched_at = time.monotonic()
    assert (await replica.cache.get_or_fetch(ITEM, fetch, ttl=0.3)).lookup.outcome == "hit"
    await older_than(0.3, fetched_at)
    again = await replica.cache.get_or_fetch(ITEM, fetch, ttl=0.3)
    assert again.lookup.outcome == "miss"
    assert emulator.total_calls("GET /items/42") == 2


async def test_local_tier_answers_repeats_without_redis_or_upstream(
    replicas: ReplicaFactory, emulator: UpstreamEmulator
) -> None:
    replica = replicas(local_ttl=30)
    fetch = fetch_json(replica.client, "/items/42")
    await replica.cache.get_or_fetch(ITEM, fetch, ttl=60)
    await replica.redis.delete(replica.cache.key_name(ITEM))
    repeat = await replica.cache.get_or_fetch(ITEM, fetch, ttl=60)
    assert (repeat.value, repeat.lookup.outcome) == ({"id": "42"}, "hit")
    assert emulator.total_calls() == 1


async def test_put_and_invalidate_are_seen_by_the_next_lookup(
    replicas: ReplicaFactory, emulator: UpstreamEmulator
) -> None:
    writer, reader = replicas(local_ttl=30), replicas()
    fetch = fetch_json(reader.client, "/items/42")
    await writer.cache.put(ITEM, {"id": "42", "name": "written"}, ttl=60)
    written = await reader.cache.get_or_fetch(ITEM, fetch, ttl=60)
    assert written.value == {"id": "42", "name": "written"}
    assert emulator.total_calls() == 0

    await writer.cache.invalidate(ITEM)
    assert (await writer.cache.get_or_fetch(ITEM, fetch, ttl=60)).lookup.outcome == "miss"

    other = CacheKey("emulated", "app-sre", "other-type", "7")
    await writer.cache.put(other, [1], ttl=60)
    await writer.cache.invalidate(CachePrefix("emulated", "app-sre"))
    assert await writer.redis.exists(writer.cache.key_name(ITEM), writer.cache.key_name(other)) == 0
    assert (await writer.cache.get_or_fetch(ITEM, fetch, ttl=60)).lookup.outcome == "miss"


async def test_batch_lookup_returns_hits_and_missing_keys(replicas: ReplicaFactory) -> None:
    replica = replicas()
    keys = [CacheKey("emulated", "app-sre", "item", str(n)) for n in range(4)]
    await replica.cache.set_many({keys[0]: {"id": "0"}, keys[2]: []}, ttl=60)
    found, missing = await replica.cache.get_many(keys)
    assert {k: v.value for k, v in found.items()} == {keys[0]: {"id": "0"}, keys[2]: []}
    assert missing == [keys[1], keys[3]]


async def test_200_callers_on_3_replicas_make_exactly_one_upstream_fetch(
    replicas: ReplicaFactory, emulator: UpstreamEmulator
) -> None:
    three = [replicas(), replicas(), replicas()]
    emulator.slow(0.3, times=1)
    results = await asyncio.gather(
        *(
            three[n % 3].cache.get_or_fetch(ITEM, fetch_json(three[n % 3].client, "/items/42"), 60)
            for n in range(200)
        )
    )
    assert emulator.total_calls() == 1
    assert {str(r.value) for r in results} == {str({"id": "42"})}
    assert sum(r.lookup.outcome == "miss" for r in results) >= 1


HOLDER = """
import asyncio, sys
from prometheus_client import CollectorRegistry
from gateway.cache import Cache, CacheKey, CacheMetrics
from gateway.redis import create_redis

async def main() -> None:
    cache = Cache(create_redis(sys.argv[1]), sys.argv[2], CacheMetrics(CollectorRegistry()),
                  lease=float(sys.argv[3]))
    await cache.get_or_fetch(CacheKey("emulated", "app-sre", "item", "42"),
                             asyncio.Event().wait, ttl=60)

asyncio.run(main())
"""


async def start_holder(redis_url: str, namespace: str, lease: float) -> asyncio.subprocess.Process:
    """A process (HOLDER) that takes key 42's single-flight lease and renews it until killed."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HOLDER,
        redis_url,
        namespace,
        str(lease),
        cwd=os.getcwd(),
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )


async def test_lock_of_a_killed_holder_is_taken_over_within_its_lease(
    replicas: ReplicaFactory, emulator: UpstreamEmulator, redis_url: str, namespace: str
) -> None:
    lease = 1.0
    holder = await start_holder(redis_url, namespace, lease)
    survivor = replicas()
    lock = CacheKeys(namespace).lock(ITEM.tag, ITEM.ident)
    try:

        async def holder_locked() -> bool:
            return bool(await survivor.redis.exists(lock))

        await async_wait_until(holder_locked, timeout=20, what="the holder to take the lock")
        await older_than(lease, time.monotonic())
        assert await holder_locked(), "a live holder keeps renewing its lease"
    finally:
        holder.kill()
        await holder.wait()
    killed_at = time.monotonic()
    taken_over = await survivor.cache.get_or_fetch(
        ITEM, fetch_json(survivor.client, "/items/42"), ttl=60
    )
    assert taken_over.lookup.outcome == "miss"
    assert time.monotonic() - killed_at < lease + 1.0
    assert emulator.total_calls() == 1


async def test_stale_copy_is_served_when_upstream_fails_after_ttl(
    replicas: ReplicaFactory, emulator: UpstreamEmulator
) -> None:
    replica = replicas(policy=NO_RETRY)
    fetch = fetch_json(replica.client, "/items/42")
    await replica.cache.get_or_fetch(ITEM, fetch, ttl=0.2, max_stale=60)
    fetched_at = time.monotonic()
    await older_than(0.2, fetched_at)
    emulator.fail(500, times=5)
    stale = await replica.cache.get_or_fetch(ITEM, fetch, ttl=0.2, max_stale=60)
    assert (stale.value, stale.lookup.outcome) == ({"id": "42"}, "stale")
    assert stale.lookup.age_seconds >= 0.2
    assert emulator.total_calls() == 2


async def test_error_is_raised_when_the_copy_is_older_than_max_staleness(
    replicas: ReplicaFactory, emulator: UpstreamEmulator
) -> None:
    replica = replicas(policy=NO_RETRY)
    fetch = fetch_json(replica.client, "/items/42")
    await replica.cache.get_or_fetch(ITEM, fetch, ttl=0.1, max_stale=0.2)
    fetched_at = time.monotonic()
    await older_than(0.3, fetched_at)
    emulator.fail(500, times=5)
    with pytest.raises(UpstreamUnavailable, match="HTTP 500"):
        await replica.cache.get_or_fetch(ITEM, fetch, ttl=0.1, max_stale=0.2)


async def test_unreachable_redis_fails_fast_and_cache_recovers_on_restart(
    replicas: ReplicaFactory, emulator: UpstreamEmulator
) -> None:
    with PrivateRedis() as server:
        replica = replicas(url=server.url)
        fetch = fetch_json(replica.client, "/items/42")
        await replica.cache.get_or_fetch(ITEM, fetch, ttl=60)
        server.stop()
        other = CacheKey("emulated", "app-sre", "item", "43")
        with pytest.raises(UpstreamUnavailable, match=r"shared cache \(Redis\) unreachable"):
            async with asyncio.timeout(2):
                await replica.cache.get_or_fetch(other, fetch, ttl=60)
        server.start()
        back = await replica.cache.get_or_fetch(other, fetch, ttl=60)
        assert back.lookup.outcome == "miss"


async def test_token_never_appears_in_errors_or_cache_keys(
    replicas: ReplicaFactory, emulator: UpstreamEmulator, namespace: str
) -> None:
    replica = replicas(policy=NO_RETRY)
    await replica.cache.get_or_fetch(ITEM, fetch_json(replica.client, "/items/42"), ttl=60)
    emulator.fail(401, times=1)
    emulator.fail(503, times=1)
    errors = []
    for _ in range(2):
        with pytest.raises(Exception) as raised:  # noqa: PT011 - any error, checked below
            await replica.client.request("test.get", "GET", UpstreamPath("/items/1"))
        errors.append(raised.value)
    keys = [name async for name in replica.redis.scan_iter(match=f"{namespace}:*")]
    shown = " ".join(
        [
            *(f"{e!r} {e} {getattr(e, 'extensions', '')}" for e in errors),
            *(k.decode() for k in keys),
            repr(replica.client.account),
        ]
    )
    assert keys
    assert SECRET not in shown
    assert "Bearer" not in shown


@pytest.mark.parametrize(
    "stored",
    [b"not json", b"[]", b'{"v": {"id": "x"}}', b'{"t": "then", "ttl": 60, "v": {}}'],
)
async def test_an_entry_this_replica_cannot_read_is_a_miss_not_a_crash(
    replicas: ReplicaFactory, emulator: UpstreamEmulator, stored: bytes
) -> None:
    replica = replicas()
    await replica.redis.set(replica.cache.key_name(ITEM), stored)
    found = await replica.cache.get_or_fetch(ITEM, fetch_json(replica.client, "/items/42"), ttl=60)
    assert found.lookup.outcome == "miss"
    assert emulator.total_calls("GET /items/42") == 1


async def test_entries_of_the_previous_key_layout_are_never_read(
    replicas: ReplicaFactory, emulator: UpstreamEmulator, namespace: str
) -> None:
    replica = replicas()
    old_layout = f"{namespace}:cache:{{{ITEM.tag}}}:value:{ITEM.ident}"
    assert old_layout != replica.cache.key_name(ITEM)
    old_value = b'{"t": 9999999999, "ttl": 60, "v": {"legacy": "shape"}}'
    await replica.redis.set(old_layout, old_value)
    found = await replica.cache.get_or_fetch(ITEM, fetch_json(replica.client, "/items/42"), ttl=60)
    assert "legacy" not in found.value
    assert emulator.total_calls("GET /items/42") == 1
