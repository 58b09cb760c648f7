"""Real parts for task tests: task queues on the test's Redis and real Celery worker processes."""

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from gateway.redis import create_redis
from gateway.redis_keys import key
from gateway.runtime import Runtime
from gateway.settings import Settings
from gateway.tasks.queue import TaskQueue
from tests.support.wait import async_wait_until, wait_until
from tests.tasks.kinds import test_kinds

ROOT = Path(__file__).parents[2]
HEARTBEAT_TIMEOUT = 2.0
TASKS = {
    "heartbeat_interval": 0.5,
    "heartbeat_timeout": HEARTBEAT_TIMEOUT,
}


def task_settings(redis_url: str, namespace: str, role: str, **tasks: Any) -> Settings:
    """Settings for a task queue or worker on the test's Redis and namespace."""
    return Settings(
        role=role,
        redis={"url": redis_url, "namespace": namespace},
        tasks={**TASKS, **tasks},
    )


@dataclass
class Gate:
    """A gated task's lists: where it reports its start and what the test opens."""

    redis: Redis
    started: str
    gate: str

    @property
    def payload(self) -> dict[str, str]:
        """The payload of a `test.gated` task using this gate."""
        return {"started": self.started, "gate": self.gate}

    async def starts(self) -> list[dict[str, Any]]:
        """Every start reported so far: pid, attempt, task id."""
        raw = await self.redis.lrange(self.started, 0, -1)
        return [json.loads(item) for item in raw]

    async def wait_started(self, count: int = 1, timeout: float = 20) -> list[dict[str, Any]]:
        """The starts, once there are `count` of them."""

        async def enough() -> bool:
            return len(await self.starts()) >= count

        await async_wait_until(enough, timeout, f"{count} start(s) of the gated task")
        return await self.starts()

    async def open(self) -> None:
        """Let one waiting run finish."""
        await self.redis.rpush(self.gate, "open")


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client of the test's Redis."""
    client = create_redis(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def gate_factory(redis: Redis, namespace: str) -> Callable[[str], Gate]:
    """Gates with lists under the test's namespace."""

    def make(name: str) -> Gate:
        return Gate(
            redis, key(namespace, "test", name, "started"), key(namespace, "test", name, "gate")
        )

    return make


QueueFactory = Callable[..., Awaitable[TaskQueue]]


@pytest.fixture
async def queue_factory(redis_url: str, namespace: str) -> AsyncIterator[QueueFactory]:
    """Task queues in the test's process: `await make(role, start=True, **tasks)`."""
    made: list[tuple[TaskQueue, Runtime, bool]] = []

    async def make(role: str, start: bool = True, **tasks: Any) -> TaskQueue:
        runtime = Runtime.create(task_settings(redis_url, namespace, role, **tasks))
        queue = TaskQueue.create(runtime, test_kinds(runtime))
        if start:
            await queue.start()
        made.append((queue, runtime, start))
        return queue

    yield make
    for queue, runtime, started in made:
        if started:
            await queue.aclose()
        else:
            await queue.engine.aclose()
        await runtime.aclose()


class Worker:
    """A worker process group on the test's Redis: by default `python -m tests.tasks.worker`
    (the gateway's worker with the test kinds); `command` (after `python -m`) and `env` run
    another, such as the gateway's own `gateway worker --queues=...` with its upstreams."""

    def __init__(
        self,
        redis_url: str,
        namespace: str,
        queues: str,
        command: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.log = Path(tempfile.mkstemp(prefix="qgw-worker-", suffix=".log")[1])
        environment = {
            **os.environ,
            "QONTRACT_GATEWAY_REDIS__URL": redis_url,
            "QONTRACT_GATEWAY_REDIS__NAMESPACE": namespace,
            "QONTRACT_GATEWAY_LOG_FORMAT": "console",
            "PYTHONPATH": str(ROOT),
            **{f"QONTRACT_GATEWAY_TASKS__{name.upper()}": str(v) for name, v in TASKS.items()},
            **(env or {}),
        }
        arguments = list(command) or ["tests.tasks.worker", queues]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", *arguments],
                cwd=ROOT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 60) -> "Worker":
        """Wait until Celery reports the worker ready to consume."""
        wait_until(
            lambda: "ready." in self.output() or self.process.poll() is not None,
            timeout,
            "the Celery worker to be ready",
        )
        assert self.process.poll() is None, self.output()
        return self

    def output(self) -> str:
        """What the worker logged so far."""
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children), as a lost pod."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


WorkerFactory = Callable[..., Worker]


@pytest.fixture
def worker_factory(redis_url: str, namespace: str) -> Iterator[WorkerFactory]:
    """Start real Celery workers: `factory(queues="reconcile-apply")` (or another `command`
    with `env`, see Worker); killed at teardown."""
    started: list[Worker] = []

    def start(
        queues: str = "reconcile-dry-run,reconcile-apply",
        command: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> Worker:
        worker = Worker(redis_url, namespace, queues, command, env).wait_ready()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()
        worker.log.unlink(missing_ok=True)
