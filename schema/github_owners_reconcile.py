"""`github_owners_reconcile_v1`: desired GitHub org owners in, a reconcile task out; and the
typed results of `github-owners.reconcile` tasks (from resolvers/github/reconcile_models.py)."""

from typing import Any

import strawberry
from pydantic import ValidationError
from strawberry.experimental import pydantic
from strawberry.types import Info

from gateway.errors import BadUserInput, shown
from gateway.settings import validation_problems
from resolvers.github.api import LOGIN
from resolvers.github.reconcile import TASK_KIND
from resolvers.github.reconcile_models import (
    AddOwner,
    OwnerTarget,
    ReconcileRequest,
    ReconcileResult,
)
from resolvers.github.source import GitHubSource
from schema.context import RequestContext
from schema.inputs import check_items
from schema.permissions import scope
from schema.tasks import READ_TASK_SCOPES, ReconcileTask, ReconcileTaskResult, submit_reconcile


@strawberry.input(name="GitHubOwnersOrganizationInput_v1")
class OrganizationInput:
    """An org (a configured GitHub account) and the logins that must be its owners."""

    org: str
    owners: list[str]


@strawberry.input(name="GitHubOwnersReconcileInput_v1")
class ReconcileInput:
    """The orgs to reconcile, each at most once; a dry run (the default) only computes the
    actions."""

    dry_run: bool = True
    organizations: list[OrganizationInput]


def reconcile_request(info: Info[RequestContext, None], input: ReconcileInput) -> ReconcileRequest:
    """The request `input` asks for, or BAD_USER_INPUT: lists within the limits, each login
    well formed, each org a configured account listed once; checked in time linear in `input`."""
    limits = info.context.runtime.settings.limits
    check_items("`input.organizations`", len(input.organizations), limits)
    total = 0
    seen: set[str] = set()
    for organization in input.organizations:
        org = organization.org
        where = f"the owners of {shown(org)}"
        check_items(where, len(organization.owners), limits)
        total += len(organization.owners)
        check_items("`input.organizations[].owners` together", total, limits, whole_request=True)
        info.context.sources.get(GitHubSource, org)
        if org in seen:
            raise BadUserInput(f"organization {shown(org)} is listed more than once")
        seen.add(org)
        for login in organization.owners:
            problem = LOGIN.problem(login)
            if problem is not None:
                raise BadUserInput(f"{where}: {problem.message}")
    organizations = [{"org": o.org, "owners": o.owners} for o in input.organizations]
    try:
        return ReconcileRequest.model_validate(
            {"dry_run": input.dry_run, "organizations": organizations}
        )
    except ValidationError as error:  # the model's own bounds, when `limits.*` allow more
        raise BadUserInput(f"invalid reconcile input: {validation_problems(error)}") from None


async def github_owners_reconcile(
    info: Info[RequestContext, None], input: ReconcileInput
) -> ReconcileTask:
    """Submit the run and return its task at once; real runs of the same orgs dedup.

    The field admits either reconcile scope; a real run needs `reconcile:apply` as well.
    """
    return await submit_reconcile(info, TASK_KIND, reconcile_request(info, input))


@strawberry.type
class GitHubOwnersMutation:
    """GitHub owners reconcile (joined into Mutation by the system registry)."""

    github_owners_reconcile_v1: ReconcileTask = strawberry.mutation(
        resolver=github_owners_reconcile,
        extensions=scope(*READ_TASK_SCOPES),
        description="Make the logins of `input` owners of their GitHub orgs (never removes an "
        "owner); returns the task at once (read it with `reconcile_task_v1`). Real runs need "
        "`reconcile:apply`, dry runs `reconcile:dry-run`; a real run for orgs that already "
        "have one pending or running returns that task",
    )


@pydantic.interface(model=OwnerTarget, name="GitHubOwnerAction_v1")
class GitHubOwnerAction:
    """One change to one org's owners; owners are never removed."""

    org: strawberry.auto
    login: strawberry.auto


# The ignore: Strawberry's mypy plugin types `from_pydantic` by each class's own model.
@pydantic.type(model=AddOwner, name="GitHubOwnerAdd_v1")
class GitHubOwnerAdd(GitHubOwnerAction):  # type: ignore[override]
    """Make `login` an owner of `org` (GitHub invites a login that is no member yet)."""

    org: strawberry.auto
    login: strawberry.auto


@pydantic.type(model=ReconcileResult, name="GitHubOwnersReconcileResult_v1")
class GitHubOwnersReconcileResult(ReconcileTaskResult):
    """What a finished run did: `failed` iff `errors` is not empty."""

    status: str
    errors: strawberry.auto
    actions: list[GitHubOwnerAction]
    applied_count: strawberry.auto


def reconcile_result(result: dict[str, Any]) -> GitHubOwnersReconcileResult:
    """The typed view of a `github-owners.reconcile` task's JSON result."""
    return GitHubOwnersReconcileResult.from_pydantic(ReconcileResult.model_validate(result))


TYPES = (GitHubOwnerAdd, GitHubOwnersReconcileResult)
"""The types reached only through interfaces, for `Schema(types=...)`."""
