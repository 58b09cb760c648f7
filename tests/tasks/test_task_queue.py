"""Tasks on the in-process engine (`serve --role all`) and the Celery producer, on a real Redis."""

import time
from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from gateway.errors import NotFound
from gateway.redis_keys import TaskKeys
from gateway.tasks.celery_app import broker_url
from gateway.tasks.record import TaskStatus
from tests.tasks.conftest import Gate, QueueFactory


async def test_submitted_task_runs_in_process_and_wait_returns_its_result(
    queue_factory: QueueFactory,
) -> None:
    queue = await queue_factory("all")
    submitted = await queue.submit("test.echo", {"n": 1}, dry_run=True, request_id="req-1")
    assert submitted.status == TaskStatus.PENDING

    done = await queue.wait(submitted.id, 10)

    assert done.status == TaskStatus.SUCCESS
    assert done.result == {"echo": {"n": 1}, "dry_run": True}
    assert done.request_id == "req-1"
    assert done.submitted_at <= done.started_at <= done.finished_at  # type: ignore[operator]


async def test_unknown_task_id_is_not_found(queue_factory: QueueFactory) -> None:
    queue = await queue_factory("all")
    with pytest.raises(NotFound):
        await queue.get("6f0c1c1e-0000-4000-8000-000000000000")
    with pytest.raises(NotFound):
        await queue.wait("6f0c1c1e-0000-4000-8000-000000000000", 1)


async def test_wait_expires_with_the_task_still_pending(queue_factory: QueueFactory) -> None:
    queue = await queue_factory("api")  # no worker consumes the queue
    submitted = await queue.submit("test.echo", {}, dry_run=True)

    began = time.monotonic()
    record = await queue.wait(submitted.id, 1)

    assert record.status == TaskStatus.PENDING
    assert 1 <= time.monotonic() - began < 3


async def test_second_real_run_on_a_busy_resource_gets_the_running_task_not_a_dry_run(
    queue_factory: QueueFactory, gate_factory: Callable[[str], Gate]
) -> None:
    queue = await queue_factory("all")
    gate = gate_factory("dedup")
    first = await queue.submit("test.gated", gate.payload, dry_run=False, resource="slack:coreos")
    await gate.wait_started()

    again = await queue.submit("test.echo", {}, dry_run=False, resource="slack:coreos")
    dry = await queue.submit("test.echo", {}, dry_run=True, resource="slack:coreos")
    other = await queue.submit("test.echo", {}, dry_run=False, resource="slack:other")

    assert again.id == first.id
    assert again.status == TaskStatus.RUNNING
    assert dry.id != first.id
    assert (await queue.wait(dry.id, 10)).status == TaskStatus.SUCCESS
    assert (await queue.wait(other.id, 10)).status == TaskStatus.SUCCESS
    await gate.open()
    assert (await queue.wait(first.id, 10)).status == TaskStatus.SUCCESS
    after = await queue.submit("test.echo", {}, dry_run=False, resource="slack:coreos")
    assert after.id != first.id
    assert (await queue.wait(after.id, 10)).status == TaskStatus.SUCCESS


async def test_failing_task_is_failed_with_a_masked_error(queue_factory: QueueFactory) -> None:
    queue = await queue_factory("all")
    submitted = await queue.submit("test.broken", {}, dry_run=True)

    done = await queue.wait(submitted.id, 10)

    assert done.status == TaskStatus.FAILED
    assert done.error is not None
    assert "hunter2" not in done.error
    assert submitted.id in done.error


async def test_unknown_kind_fails_instead_of_staying_pending(queue_factory: QueueFactory) -> None:
    queue = await queue_factory("all")
    submitted = await queue.submit("no.such-kind", {}, dry_run=True)

    done = await queue.wait(submitted.id, 10)

    assert done.status == TaskStatus.FAILED
    assert done.error == "unknown task kind 'no.such-kind'"


async def test_task_record_expires_after_its_ttl(
    queue_factory: QueueFactory, redis: Redis, namespace: str
) -> None:
    queue = await queue_factory("all", record_ttl=3600)
    submitted = await queue.submit("test.echo", {}, dry_run=True)
    await queue.wait(submitted.id, 10)

    ttl = await redis.pttl(TaskKeys(namespace).record(submitted.id))

    assert 3_500_000 < ttl <= 3_600_000


def test_embedded_unix_socket_url_becomes_a_kombu_socket_url() -> None:
    assert broker_url("unix:///tmp/qgw/redis.sock?db=0") == (
        "redis+socket:///tmp/qgw/redis.sock?virtual_host=0"
    )
    assert broker_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


async def test_task_queued_in_a_dead_process_is_dispatched_again_and_runs_once(
    queue_factory: QueueFactory, redis: Redis, namespace: str
) -> None:
    dead = await queue_factory("all", start=False)
    submitted = await dead.submit("test.echo", {"n": 1}, dry_run=True)
    alive = await queue_factory("all", redispatch_after=0.5)

    finished = await alive.wait(submitted.id, 15)

    assert finished.status.value == "success"
    assert finished.attempt == 1
    assert await redis.zcard(TaskKeys(namespace).pending()) == 0
