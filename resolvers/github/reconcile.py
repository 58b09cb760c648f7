"""The GitHub owners reconcile: current owners, the add-only diff, and (unless a dry run) apply."""

import asyncio
from collections.abc import Collection, Mapping

from gateway.errors import GatewayError, shown
from gateway.events import EventPublisher
from gateway.events.action_log import ActionLog
from gateway.registry import Sources
from gateway.tasks.reconcile import ReconcileKind, refuse_repeated
from resolvers.github.api import LOGIN
from resolvers.github.reconcile_models import (
    AddOwner,
    OrganizationRequest,
    OwnerError,
    ReconcileRequest,
    ReconcileResult,
)
from resolvers.github.source import GitHubSource

TASK_KIND = "github-owners.reconcile"
EVENT_PREFIX = "github-owners"

OrgOutcome = tuple[list[AddOwner], int, list[OwnerError]]


def compute_actions(
    desired: OrganizationRequest, current: Collection[str]
) -> tuple[list[AddOwner], list[OwnerError]]:
    """The owners to add to one org, and the logins refused, as errors; never a removal.

    `current` holds lower-case logins; a desired login counts once whatever its case (its
    first spelling is kept). One pass over the request with set lookups: linear in its size.
    """
    owners = current if isinstance(current, set | frozenset) else set(current)
    seen: set[str] = set()
    actions: list[AddOwner] = []
    errors: list[OwnerError] = []
    for login in desired.owners:
        problem = LOGIN.problem(login)
        if problem is not None:
            errors.append(OwnerError(desired.org, shown(login), problem.message))
            continue
        folded = login.lower()
        if folded in seen:
            continue
        seen.add(folded)
        if folded not in owners:
            actions.append(AddOwner(org=desired.org, login=login))
    return actions, errors


class OwnerEvents(ActionLog):
    """`github-owners.add_owner` and `.error` events of one run; `origin` (the task's `task_id`
    and its submitting `request_id`) joins every payload."""

    def __init__(self, publisher: EventPublisher, origin: Mapping[str, str] | None = None) -> None:
        super().__init__(publisher, EVENT_PREFIX, origin)

    async def error(self, error: OwnerError) -> None:
        """Publish one `github-owners.error`."""
        payload = {"org": error.org, "login": error.login, "error": str(error)}
        await self.publish("error", payload)


async def known_logins(
    source: GitHubSource, actions: list[AddOwner]
) -> tuple[list[AddOwner], list[OwnerError]]:
    """The actions whose login GitHub knows, and an error for each other one (asked in dry runs
    too, so a merge request check catches a mistyped login; the answers are cached)."""
    exists = await source.logins_exist([action.login for action in actions])
    known: list[AddOwner] = []
    errors: list[OwnerError] = []
    for action in actions:
        found = exists[action.login]
        if found is True:
            known.append(action)
            continue
        reason = (
            "add_owner refused: GitHub has no such login"
            if found is False
            else f"add_owner failed: looking the login up failed: {found.message}"
        )
        errors.append(OwnerError(action.org, action.login, reason))
    return known, errors


async def apply(
    source: GitHubSource, actions: list[AddOwner], events: OwnerEvents
) -> tuple[int, list[OwnerError]]:
    """Apply one org's actions in order through its own source; how many were applied, and one
    error per failed action."""
    applied = 0
    errors: list[OwnerError] = []
    for action in actions:
        try:
            state = await source.add_owner(action.login)
        except GatewayError as error:
            failed = OwnerError(action.org, action.login, f"add_owner failed: {error.message}")
            errors.append(failed)
            await events.error(failed)
            continue
        applied += 1
        await events.publish(action.kind, {**action.model_dump(mode="json"), "state": state})
    return applied, errors


async def _reconcile_org(
    desired: OrganizationRequest, source: GitHubSource, dry_run: bool, events: OwnerEvents
) -> OrgOutcome:
    """One org's actions (those of logins GitHub knows), how many were applied and its errors."""
    try:
        current = await source.org_owners()
    except GatewayError as error:
        failed = OwnerError(desired.org, "", f"reading the current owners failed: {error.message}")
        if not dry_run:
            await events.error(failed)
        return [], 0, [failed]
    wanted, errors = compute_actions(desired, current.value)
    actions, unknown = await known_logins(source, wanted)
    errors += unknown
    if dry_run:
        return actions, 0, errors
    for refused in errors:
        await events.error(refused)
    applied, apply_errors = await apply(source, actions, events)
    return actions, applied, errors + apply_errors


async def reconcile(
    request: ReconcileRequest,
    sources: Sources,
    publisher: EventPublisher,
    origin: Mapping[str, str] | None = None,
) -> ReconcileResult:
    """Reconcile every org of `request`, each with its own account; failed iff errors.

    Unknown or repeated orgs are BAD_USER_INPUT before anything is read or written; `origin`
    (task and request ids) joins every event's payload.
    """
    refuse_repeated("organizations", (org.org for org in request.organizations))
    org_sources = [sources.get(GitHubSource, org.org) for org in request.organizations]
    events = OwnerEvents(publisher, origin)
    outcomes = await asyncio.gather(
        *(
            _reconcile_org(org, source, request.dry_run, events)
            for org, source in zip(request.organizations, org_sources, strict=True)
        )
    )
    return ReconcileResult.joined(outcomes)


class GitHubOwnersReconcile(ReconcileKind[ReconcileRequest]):
    """The `github-owners.reconcile` task: a JSON request in, the JSON result out."""

    request_model = ReconcileRequest

    async def run(
        self, request: ReconcileRequest, origin: Mapping[str, str] | None
    ) -> ReconcileResult:
        """Reconcile `request` on the process's sources."""
        return await reconcile(request, self.sources, self.publisher, origin)
