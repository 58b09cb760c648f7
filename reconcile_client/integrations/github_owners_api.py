"""github-owners-api: GitHub org owners from app-interface roles, added by the qontract-gateway.

As qontract-reconcile's github-owners(-api): a user or bot becomes an owner of an org when one
of its unexpired roles has a `github-org-team` permission (`PermissionGithubOrgTeam_v1`) with
`role: owner` for that org; logins are lower-cased; owners are only ever added.
"""

import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from reconcile_client.errors import ConfigError
from reconcile_client.gql.gateway.github_owners_task import (
    GitHubOwnerActionV1,
    GitHubOwnersReconcileResultV1,
    ReconcileTaskV1,
)
from reconcile_client.gql.inputs import GitHubOwnersOrganization, GitHubOwnersReconcileInput
from reconcile_client.gql.qontract_server.github_owners_desired_state import (
    PermissionGithubOrgTeamV1,
    RoleV1,
)
from reconcile_client.integration import QontractReconcileApiIntegration
from reconcile_client.integrations.app_interface import role_active
from reconcile_client.operations import (
    GITHUB_OWNERS_DESIRED_STATE,
    GITHUB_OWNERS_RECONCILE,
    GITHUB_OWNERS_TASK,
)
from reconcile_client.params import PydanticRunParams
from reconcile_client.task_wait import report_task, wait_for_task

logger = logging.getLogger(__name__)

INTEGRATION = "github-owners-api"
OWNER_ROLE = "owner"


class GitHubOwnersIntegrationParams(PydanticRunParams):
    """Narrow a run to one GitHub org."""

    org_name: str | None = None


def desired_owners(
    roles: Iterable[RoleV1], now: datetime, org_name: str | None = None
) -> list[GitHubOwnersOrganization]:
    """Each org's owners (lower-case, sorted), orgs sorted; only `org_name` when given.

    Expired roles grant nothing; users and bots without a GitHub login are skipped.
    """
    owners: dict[str, set[str]] = {}
    for role in roles:
        orgs = {
            permission.org
            for permission in role.permissions or []
            if isinstance(permission, PermissionGithubOrgTeamV1) and permission.role == OWNER_ROLE
        }
        if org_name is not None:
            orgs &= {org_name}
        if not orgs or not role_active(role, now):
            continue
        logins = {member.github_username.lower() for member in role.users}
        logins |= {bot.github_username.lower() for bot in role.bots if bot.github_username}
        for org in orgs:
            owners.setdefault(org, set()).update(login for login in logins if login)
    return [GitHubOwnersOrganization(org=org, owners=sorted(owners[org])) for org in sorted(owners)]


class GitHubOwnersIntegration(QontractReconcileApiIntegration[GitHubOwnersIntegrationParams]):
    """Add GitHub org owners through the qontract-gateway; never removes one."""

    @property
    def name(self) -> str:
        """`github-owners-api`."""
        return INTEGRATION

    async def desired_state(self, now: datetime | None = None) -> list[GitHubOwnersOrganization]:
        """Owners per org, from app-interface (through a federating gateway, or qontract-server
        when one is configured), pinned to one bundle."""
        data = await self.qontract_server.execute(GITHUB_OWNERS_DESIRED_STATE)
        organizations = desired_owners(
            data.roles or [], now or datetime.now(tz=UTC), self.params.org_name
        )
        if self.params.org_name is not None and not organizations:
            raise ConfigError(
                f"org {self.params.org_name!r} has no owners in app-interface (no unexpired role "
                "with a github-org-team permission of role owner names it)"
            )
        return organizations

    async def async_run(self, dry_run: bool) -> None:
        """Submit the desired owners; a dry run waits for the actions and reports them."""
        organizations = await self.desired_state()
        if not organizations:
            print("nothing to reconcile: no org owners in app-interface")
            return
        request = GitHubOwnersReconcileInput(dry_run=dry_run, organizations=organizations)
        accepted = await self.gateway.execute(
            GITHUB_OWNERS_RECONCILE, {"input": request.model_dump()}
        )
        task = accepted.github_owners_reconcile_v1
        if not dry_run:
            print(f"reconcile task {task.q_id} accepted ({task.status.value})")
            return
        finished = await wait_for_task(
            self.gateway, GITHUB_OWNERS_TASK, task.q_id, lambda data: data.reconcile_task_v1
        )
        report(task.q_id, finished)


def describe(action: GitHubOwnerActionV1) -> str:
    """One readable line for an action: `add_owner org/login`."""
    return f"add_owner {action.org}/{action.login}"


def report(task_id: str, task: ReconcileTaskV1) -> None:
    """Print every action; IntegrationFailed on errors, a failed task or one still pending."""
    result = task.typed_result
    actions = result.actions if isinstance(result, GitHubOwnersReconcileResultV1) else []
    report_task(task_id, task.status.value, task.error, result, [describe(a) for a in actions])
