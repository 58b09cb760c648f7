"""How submitted tasks reach a runner: the engine protocol and the two queues tasks go to."""

from typing import Protocol

from gateway.tasks.record import TaskRecord

DRY_RUN_QUEUE = "reconcile-dry-run"
APPLY_QUEUE = "reconcile-apply"
QUEUES = (DRY_RUN_QUEUE, APPLY_QUEUE)


def queue_for(record: TaskRecord) -> str:
    """Dry runs and real runs never wait behind each other."""
    return DRY_RUN_QUEUE if record.dry_run else APPLY_QUEUE


class TaskEngine(Protocol):
    """Delivers task records to runners: in this process, or through a broker to workers."""

    async def start(self) -> None:
        """Begin delivering (start workers, if any run here)."""

    async def dispatch(self, record: TaskRecord) -> None:
        """Deliver attempt `record.attempt` of `record` to a runner, once."""

    async def aclose(self) -> None:
        """Stop delivering and release connections."""
