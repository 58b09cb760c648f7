"""Typed GraphQL operations: qenerate's modules under reconcile_client/gql, bound for execution.

Each `.gql` file has a module qenerate generated next to it (`python -m tests.support.qenerate`)
with its `DEFINITION` (operations) and models; the bindings below are what the clients run.
"""

from dataclasses import dataclass
from importlib.resources import files
from typing import Generic, TypeVar

from pydantic import BaseModel

from reconcile_client.gql.federated import slack_usergroups_joined
from reconcile_client.gql.gateway import (
    ldap_users,
    pagerduty_escalation_policy_users,
    pagerduty_schedule_users,
    reconcile_task,
    slack_usergroups_reconcile,
    vcs_file,
    vcs_file_sync,
    vcs_owners,
)
from reconcile_client.gql.qontract_server import (
    integrations,
    ldap_users_with_paths,
    slack_usergroups_desired_state,
)

ResultT = TypeVar("ResultT", bound=BaseModel)


@dataclass(frozen=True)
class Operation(Generic[ResultT]):
    """A named GraphQL document and the pydantic model its `data` validates into."""

    name: str
    document: str
    result: type[ResultT]


@dataclass(frozen=True)
class Fragment(Generic[ResultT]):
    """A named fragment from a `.gql` file, spread into documents built at run time."""

    name: str
    path: str
    result: type[ResultT]

    @property
    def document(self) -> str:
        """The fragment definition, read from `reconcile_client/gql/<path>`."""
        return files("reconcile_client").joinpath("gql", self.path).read_text()


RECONCILE_TASK = Operation(
    "ReconcileTask", reconcile_task.DEFINITION, reconcile_task.ReconcileTaskQueryData
)
SLACK_USERGROUPS_RECONCILE = Operation(
    "SlackUsergroupsReconcile",
    slack_usergroups_reconcile.DEFINITION,
    slack_usergroups_reconcile.SlackUsergroupsReconcileMutationResponse,
)
INTEGRATIONS = Operation(
    "Integrations", integrations.DEFINITION, integrations.IntegrationsQueryData
)
SLACK_USERGROUPS_DESIRED_STATE = Operation(
    "SlackUsergroupsDesiredState",
    slack_usergroups_desired_state.DEFINITION,
    slack_usergroups_desired_state.SlackUsergroupsDesiredStateQueryData,
)
SLACK_USERGROUPS_JOINED = Operation(
    "SlackUsergroupsJoined",
    slack_usergroups_joined.DEFINITION,
    slack_usergroups_joined.SlackUsergroupsJoinedQueryData,
)
SCHEDULE_USERS = Fragment(
    "PagerDutyScheduleUsers",
    "gateway/pagerduty_schedule_users.gql",
    pagerduty_schedule_users.PagerDutyScheduleUsers,
)
ESCALATION_POLICY_USERS = Fragment(
    "PagerDutyEscalationPolicyUsers",
    "gateway/pagerduty_escalation_policy_users.gql",
    pagerduty_escalation_policy_users.PagerDutyEscalationPolicyUsers,
)
OWNERS = Fragment("VcsOwners", "gateway/vcs_owners.gql", vcs_owners.VcsOwners)
LDAP_USER = Fragment("LdapUser", "gateway/ldap_users.gql", ldap_users.LdapUser)
LDAP_USERS_WITH_PATHS = Operation(
    "LdapUsersWithPaths",
    ldap_users_with_paths.DEFINITION,
    ldap_users_with_paths.LdapUsersWithPathsQueryData,
)
VCS_FILE = Operation("VcsFile", vcs_file.DEFINITION, vcs_file.VcsFileQueryData)
VCS_FILE_SYNC = Operation(
    "VcsFileSync", vcs_file_sync.DEFINITION, vcs_file_sync.VcsFileSyncMutationResponse
)
