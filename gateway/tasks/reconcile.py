"""What every system's reconcile shares: the scopes that submit a run, the request's `dry_run`,
the refusal of accounts listed twice, the result joined from each account's outcome, and the task
kind that validates a JSON request and runs it."""

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.errors import BadUserInput, named
from gateway.events.base import EventPublisher
from gateway.settings import validation_problems
from gateway.tasks.kinds import TaskContext

if TYPE_CHECKING:
    from gateway.registry import Sources

DRY_RUN_SCOPE = "reconcile:dry-run"
APPLY_SCOPE = "reconcile:apply"

ReconcileStatus = Literal["success", "failed"]
"""A finished run's status: `failed` iff it has errors."""

AccountOutcome = tuple[Sequence[Any], int, Sequence[object]]
"""One account's part of a run: its actions, how many were applied, its errors."""


class BaseReconcileResult(BaseModel):
    """The outcome of a run: every action (applied unless a dry run), how many applied, errors;
    a system's result narrows `actions` (and describes `errors`).

    `pending` and `running` are states of the task that runs it, never of a finished result.
    """

    status: ReconcileStatus
    actions: list[Any] = Field(default_factory=list)
    applied_count: int = 0
    errors: list[str] = Field(default_factory=list)

    @classmethod
    def joined(cls, outcomes: Iterable[AccountOutcome]) -> Self:
        """One result from each account's outcome, in order: `failed` iff any has errors."""
        actions: list[Any] = []
        applied = 0
        errors: list[str] = []
        for account_actions, account_applied, account_errors in outcomes:
            actions.extend(account_actions)
            applied += account_applied
            errors.extend(str(error) for error in account_errors)
        return cls(
            status="failed" if errors else "success",
            actions=actions,
            applied_count=applied,
            errors=errors,
        )


class BaseReconcileRequest(BaseModel, ABC):
    """A reconcile request; a dry run (the default) computes the actions without applying them."""

    model_config = ConfigDict(extra="forbid")

    self_bounded: ClassVar[frozenset[str]] = frozenset()
    """Keys whose strings the request bounds itself (file contents), past the task queue's
    `tasks.max_input_string_length`; the input's total size still holds them."""

    dry_run: bool = True

    @property
    def required_scope(self) -> str:
        """The token scope a caller needs to submit this request."""
        return DRY_RUN_SCOPE if self.dry_run else APPLY_SCOPE

    @property
    @abstractmethod
    def resource(self) -> str:
        """What two real runs must not change at once: one lease per account it names."""


RequestT = TypeVar("RequestT", bound=BaseReconcileRequest)


def refuse_repeated(what: str, names: Iterable[str]) -> None:
    """BAD_USER_INPUT naming (boundedly) the `names` listed more than once, e.g. `what` =
    "clusters"; a request's accounts are each reconciled once."""
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        raise BadUserInput(f"{what} listed more than once: {named(repeated)}")


class ReconcileKind(ABC, Generic[RequestT]):
    """A system's reconcile task kind: a JSON request in, validated as `request_model`, and the
    JSON result out."""

    request_model: type[RequestT]

    def __init__(self, sources: "Sources", publisher: EventPublisher) -> None:
        self.sources = sources
        self.publisher = publisher

    @abstractmethod
    async def run(self, request: RequestT, origin: Mapping[str, str] | None) -> BaseModel:
        """Reconcile `request`; `origin` (task and request ids) joins its events."""

    def validated(self, payload: dict[str, Any], dry_run: bool | None = None) -> RequestT:
        """`payload` as the kind's request, else BAD_USER_INPUT naming the problems, never the
        input; with `dry_run` (the task's), a payload asking for the other kind of run is
        refused."""
        try:
            request = self.request_model.model_validate(payload)
        except ValidationError as error:
            raise BadUserInput(f"invalid reconcile request: {validation_problems(error)}") from None
        if dry_run is not None and request.dry_run != dry_run:
            raise BadUserInput("the payload's dry_run differs from its task's: it was altered")
        return request

    async def __call__(
        self,
        payload: dict[str, Any],
        origin: Mapping[str, str] | None = None,
        dry_run: bool | None = None,
    ) -> dict[str, Any]:
        """Validate `payload` and run it; with `dry_run` (the task's), a payload asking for the
        other kind of run is refused, since the task's queue, lease and scope check followed the
        task's."""
        result = await self.run(self.validated(payload, dry_run), origin)
        return result.model_dump(mode="json")

    async def task(self, payload: dict[str, Any], context: TaskContext) -> dict[str, Any]:
        """The task function registered for the kind: `payload` run with the task's origin, as
        the kind of run (dry or real) the task was submitted as."""
        return await self(payload, context.origin, context.dry_run)
