"""The Redis key layout of the task engine, named once."""

from dataclasses import dataclass

from gateway.redis import key


@dataclass(frozen=True)
class TaskKeys:
    """Every key and channel the task engine uses, under one namespace.

    A task's record, heartbeat and change channel share the task id as hash tag, so the scripts
    that touch them together work on Redis Cluster; a resource lease is one key on its own.
    """

    namespace: str

    def record(self, task_id: str) -> str:
        """Hash: the task record fields and its JSON payload; expires after the record TTL."""
        return key(self.namespace, "tasks", task_id, "record")

    def heartbeat(self, task_id: str) -> str:
        """String: the token of the run holding the task; expires unless renewed."""
        return key(self.namespace, "tasks", task_id, "heartbeat")

    def changes(self, task_id: str) -> str:
        """Pub/sub channel: the new status, published on every status change."""
        return key(self.namespace, "tasks", task_id, "changes")

    def running(self) -> str:
        """Sorted set: ids of running tasks (score: start time), swept for lost workers."""
        return key(self.namespace, "tasks", "index", "running")

    def pending(self) -> str:
        """Sorted set of pending task ids by when they were last dispatched."""
        return key(self.namespace, "tasks", "index", "pending")

    def caller_inputs(self, caller_digest: str) -> str:
        """Sorted set: `task_id:bytes` of a caller's submissions by time, for its input quota."""
        return key(self.namespace, "tasks", "caller-" + caller_digest, "inputs")

    def lease(self, resource: str) -> str:
        """String: the id of the real run holding `resource` (e.g. `slack:coreos`)."""
        return key(self.namespace, "leases", resource, "holder")

    def celery_prefix(self) -> str:
        """The prefix of every Celery broker key (queues, unacked messages)."""
        return f"{self.namespace}:celery:"
