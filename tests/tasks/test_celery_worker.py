"""Tasks run by real Celery worker processes (the gateway's worker with the test kinds)."""

import re
import time
from collections.abc import Callable

from redis.asyncio import Redis

from gateway.redis_keys import TaskKeys
from gateway.tasks.record import TaskStatus
from tests.support.wait import async_wait_until
from tests.tasks.conftest import HEARTBEAT_TIMEOUT, Gate, QueueFactory, WorkerFactory


async def test_worker_runs_real_runs_and_leaves_dry_runs_to_the_dry_run_queue(
    queue_factory: QueueFactory, worker_factory: WorkerFactory
) -> None:
    queue = await queue_factory("api")
    worker_factory(queues="reconcile-apply")

    real = await queue.submit("test.echo", {"n": 1}, dry_run=False, resource="slack:coreos")
    dry = await queue.submit("test.echo", {"n": 2}, dry_run=True)

    done = await queue.wait(real.id, 30)
    assert done.status == TaskStatus.SUCCESS
    assert done.result == {"echo": {"n": 1}, "dry_run": False}
    assert (await queue.wait(dry.id, 1)).status == TaskStatus.PENDING

    worker_factory(queues="reconcile-dry-run")
    assert (await queue.wait(dry.id, 30)).status == TaskStatus.SUCCESS


async def test_every_log_line_of_a_run_names_the_submitting_request(
    queue_factory: QueueFactory, worker_factory: WorkerFactory
) -> None:
    queue = await queue_factory("api")
    worker = worker_factory(queues="reconcile-dry-run")

    submitted = await queue.submit("test.echo", {}, dry_run=True, request_id="req-origin-42")
    assert (await queue.wait(submitted.id, 30)).status == TaskStatus.SUCCESS

    async def logged_its_end() -> bool:
        return "task finished" in worker.output()

    await async_wait_until(logged_its_end, 10, "the run's last log line")
    plain = re.sub(r"\x1b\[[0-9;]*m", "", worker.output())  # the console renderer's colours
    lines = [line for line in plain.splitlines() if submitted.id in line]
    assert [line for line in lines if "task started" in line or "task finished" in line]
    assert all("request_id=req-origin-42" in line for line in lines), lines


async def test_task_of_a_killed_worker_is_rerun_by_another_worker_within_seconds(
    queue_factory: QueueFactory,
    worker_factory: WorkerFactory,
    gate_factory: Callable[[str], Gate],
) -> None:
    queue = await queue_factory("api")  # its periodic sweep notices the lost worker
    gate = gate_factory("killed")
    first = worker_factory()
    submitted = await queue.submit(
        "test.gated", gate.payload, dry_run=False, resource="slack:coreos"
    )
    [start] = await gate.wait_started()
    second = worker_factory()

    first.kill()
    killed_at = time.monotonic()
    starts = await gate.wait_started(2, timeout=30)
    rerun_after = time.monotonic() - killed_at
    await gate.open()
    done = await queue.wait(submitted.id, 30)

    assert starts[1]["attempt"] == 2
    assert starts[1]["pid"] != start["pid"]
    assert done.status == TaskStatus.SUCCESS
    assert done.result == starts[1]
    # heartbeat timeout (2 s) + sweep period (1 s) + delivery to the idle second worker
    assert rerun_after < HEARTBEAT_TIMEOUT + 4, f"rerun after {rerun_after:.1f}s"
    print(f"killed worker's task rerun on a second worker after {rerun_after:.2f}s")
    assert second.process.poll() is None


async def test_lease_of_a_killed_worker_frees_within_the_heartbeat_timeout(
    queue_factory: QueueFactory,
    worker_factory: WorkerFactory,
    gate_factory: Callable[[str], Gate],
    redis: Redis,
    namespace: str,
) -> None:
    queue = await queue_factory("api", start=False)  # no sweep: only the lease expiry acts
    gate = gate_factory("lease")
    worker = worker_factory(queues="reconcile-apply")
    held = await queue.submit("test.gated", gate.payload, dry_run=False, resource="slack:coreos")
    await gate.wait_started()
    lease = TaskKeys(namespace).lease("slack:coreos")
    assert await redis.get(lease) == held.id.encode()

    worker.kill()
    killed_at = time.monotonic()

    async def lease_free() -> bool:
        return not await redis.exists(lease)

    await async_wait_until(lease_free, 30, "the dead worker's lease to expire")
    freed_after = time.monotonic() - killed_at
    assert freed_after <= HEARTBEAT_TIMEOUT + 0.5, f"lease freed after {freed_after:.1f}s"
    print(f"dead worker's lease freed after {freed_after:.2f}s")
    fresh = await queue.submit("test.echo", {}, dry_run=False, resource="slack:coreos")
    assert fresh.id != held.id
