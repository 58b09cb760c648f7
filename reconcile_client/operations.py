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
    github_owners_reconcile,
    github_owners_task,
    ldap_users,
    openshift_namespaces_reconcile,
    openshift_namespaces_task,
    pagerduty_escalation_policy_users,
    pagerduty_schedule_users,
    slack_usergroups_reconcile,
    slack_usergroups_task,
    vcs_file,
    vcs_file_sync,
    vcs_file_sync_task,
    vcs_owners,
)
from reconcile_client.gql.qontract_server import (
    github_owners_desired_state,
    integrations,
    ldap_users_with_paths,
    openshift_namespaces_desired_state,
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


SLACK_USERGROUPS_RECONCILE = Operation(
    "SlackUsergroupsReconcile",
    slack_usergroups_reconcile.DEFINITION,
    slack_usergroups_reconcile.SlackUsergroupsReconcileMutationResponse,
)
SLACK_USERGROUPS_TASK = Operation(
    "SlackUsergroupsTask",
    slack_usergroups_task.DEFINITION,
    slack_usergroups_task.SlackUsergroupsTaskQueryData,
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
GITHUB_OWNERS_RECONCILE = Operation(
    "GitHubOwnersReconcile",
    github_owners_reconcile.DEFINITION,
    github_owners_reconcile.GitHubOwnersReconcileMutationResponse,
)
GITHUB_OWNERS_TASK = Operation(
    "GitHubOwnersTask", github_owners_task.DEFINITION, github_owners_task.GitHubOwnersTaskQueryData
)
GITHUB_OWNERS_DESIRED_STATE = Operation(
    "GitHubOwnersDesiredState",
    github_owners_desired_state.DEFINITION,
    github_owners_desired_state.GitHubOwnersDesiredStateQueryData,
)
OPENSHIFT_NAMESPACES_DESIRED_STATE = Operation(
    "OpenShiftNamespacesDesiredState",
    openshift_namespaces_desired_state.DEFINITION,
    openshift_namespaces_desired_state.OpenShiftNamespacesDesiredStateQueryData,
)
OPENSHIFT_NAMESPACES_RECONCILE = Operation(
    "OpenShiftNamespacesReconcile",
    openshift_namespaces_reconcile.DEFINITION,
    openshift_namespaces_reconcile.OpenShiftNamespacesReconcileMutationResponse,
)
OPENSHIFT_NAMESPACES_TASK = Operation(
    "OpenShiftNamespacesTask",
    openshift_namespaces_task.DEFINITION,
    openshift_namespaces_task.OpenShiftNamespacesTaskQueryData,
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
VCS_FILE_SYNC_TASK = Operation(
    "VcsFileSyncTask", vcs_file_sync_task.DEFINITION, vcs_file_sync_task.VcsFileSyncTaskQueryData
)
