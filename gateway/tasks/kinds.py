"""Task kinds: a name (`slack-usergroups.reconcile`) bound to an async function, in a registry."""

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from gateway.runtime import Runtime


@dataclass(frozen=True)
class TaskContext:
    """What a running task knows about itself, and the process's runtime to work with."""

    task_id: str
    kind: str
    dry_run: bool
    resource: str | None
    request_id: str
    attempt: int
    runtime: Runtime

    @property
    def origin(self) -> dict[str, str]:
        """The task's id and its submitting request's id, for its events' payloads."""
        return {"task_id": self.task_id, "request_id": self.request_id}


TaskFunction = Callable[[dict[str, Any], TaskContext], Coroutine[Any, Any, dict[str, Any]]]


@dataclass
class TaskKinds:
    """The kinds one process can run; closers release what their functions hold."""

    functions: dict[str, TaskFunction] = field(default_factory=dict)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def register(self, kind: str, function: TaskFunction) -> None:
        """Run `function(payload, context)` for tasks of `kind`; a kind is registered once."""
        if kind in self.functions:
            raise ValueError(f"task kind {kind!r} is already registered")
        self.functions[kind] = function

    def get(self, kind: str) -> TaskFunction | None:
        """The function of `kind`, or None for a kind this process does not know."""
        return self.functions.get(kind)

    async def aclose(self) -> None:
        """Run every closer."""
        for close in self.closers:
            await close()


KindsFactory = Callable[[Runtime], TaskKinds]
"""What a worker process calls once, after its fork, to make the kinds it runs."""
