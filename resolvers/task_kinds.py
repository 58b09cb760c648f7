"""The task kinds the gateway ships; reconcile services register theirs here."""

from gateway.runtime import Runtime
from gateway.tasks.kinds import TaskKinds


def task_kinds(runtime: Runtime) -> TaskKinds:
    """The registry for settings `tasks.kinds` (the default)."""
    return TaskKinds()
