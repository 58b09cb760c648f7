"""Owned leases (`gateway.owned_lease`) and resource leases over several names, on real Redis."""

import asyncio

from redis.asyncio import Redis

from gateway.owned_lease import OwnedLeases
from gateway.redis_keys import AnswerKeys, TaskKeys
from gateway.tasks.lease import ResourceLeases, lease_names, resource_of


async def test_a_set_of_leases_is_taken_whole_or_not_at_all(redis: Redis, namespace: str) -> None:
    leases = ResourceLeases(redis, TaskKeys(namespace))
    coreos = resource_of(["slack-usergroups:coreos"])
    both = resource_of(["slack-usergroups:other", "slack-usergroups:coreos"])
    assert lease_names(both) == ["slack-usergroups:coreos", "slack-usergroups:other"]
    assert await leases.acquire(coreos, "task-a", 30) == []
    assert await leases.acquire(both, "task-b", 30) == ["task-a"]
    other = TaskKeys(namespace).lease("slack-usergroups:other")
    assert await redis.exists(other) == 0, "a refused set leaves no lease behind"
    assert await leases.acquire(both, "task-b", 30, displace=["task-a"]) == []
    assert not await leases.renew(coreos, "task-a", 30), "task-a lost its lease"
    assert await leases.renew(both, "task-b", 30)
    await leases.release(both, "task-a")
    assert await redis.get(other) == b"task-b", "only the holder frees a lease"
    await leases.release(both, "task-b")
    assert await redis.exists(other) == 0


async def test_racing_overlapping_sets_never_both_win(redis: Redis, namespace: str) -> None:
    leases = ResourceLeases(redis, TaskKeys(namespace))
    sets = [
        resource_of(["slack-usergroups:coreos"]),
        resource_of(["slack-usergroups:coreos", "slack-usergroups:other"]),
        resource_of(["slack-usergroups:other", "slack-usergroups:third"]),
    ]
    for round_ in range(20):
        outcomes = await asyncio.gather(
            *(leases.acquire(s, f"task-{round_}-{i}", 30) for i, s in enumerate(sets))
        )
        winners = {i for i, blocking in enumerate(outcomes) if not blocking}
        assert winners, "some run always gets its leases"
        assert not {0, 1} <= winners, "two runs hold coreos at once"
        assert not {1, 2} <= winners, "two runs hold other at once"
        for i in winners:
            await leases.release(sets[i], f"task-{round_}-{i}")


async def test_a_renewal_by_a_token_that_lost_its_lock_changes_nothing(
    redis: Redis, namespace: str
) -> None:
    owned = OwnedLeases(redis)
    name = TaskKeys(namespace).heartbeat("t1")
    assert await owned.acquire([name], "old-run", 0.05) == []
    await redis.set(name, "new-run", px=30_000)
    assert not await owned.renew([name], "old-run", 30)
    await owned.release([name], "old-run")
    assert await redis.get(name) == b"new-run"


async def test_a_stored_value_is_read_else_the_lease_taken_in_one_call(
    redis: Redis, namespace: str
) -> None:
    """The answer store's "read, else fetch": a set value is returned and no lease taken; an
    unset one takes the lease once; a lease held by another token is not taken."""
    keys = AnswerKeys(namespace, "qontract-server")
    value, lease = keys.value("a" * 64), keys.lease("a" * 64)
    leases = OwnedLeases(redis)
    assert await leases.read_or_acquire(value, [lease], "replica-a", 30) == (None, True)
    assert await redis.get(lease) == b"replica-a"
    assert await leases.read_or_acquire(value, [lease], "replica-b", 30) == (None, False)
    assert await redis.get(lease) == b"replica-a", "a held lease stays its holder's"
    await redis.set(value, b"200 - application/json\n{}")
    await leases.release([lease], "replica-a")
    found = await leases.read_or_acquire(value, [lease], "replica-b", 30)
    assert found == (b"200 - application/json\n{}", False)
    assert await redis.exists(lease) == 0, "a stored value takes no lease"
