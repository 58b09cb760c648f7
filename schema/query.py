"""The root Query: one `_v1` field per external data set."""

import strawberry

from schema.gateway_info import GatewayInfo, gateway_info
from schema.github import GitHubRepo, GitHubUser, github_org_members, github_repo_collaborators
from schema.inputs import bounded
from schema.jira import JiraIssue, JiraProject, jira_issues, jira_projects
from schema.pagerduty import (
    PagerDutyEscalationPolicy,
    PagerDutySchedule,
    pagerduty_escalation_policies,
    pagerduty_schedules,
)
from schema.permissions import scope
from schema.slack import (
    SlackChannel,
    SlackUser,
    SlackUsergroup,
    slack_channels,
    slack_usergroups,
    slack_users,
)
from schema.tasks import READ_TASK_SCOPES, ReconcileTask, reconcile_task
from schema.vcs import VcsOwners, vcs_owners

CACHE_BACKED_FIELDS = frozenset(
    {
        "pagerduty_schedules_v1",
        "pagerduty_escalation_policies_v1",
        "slack_usergroups_v1",
        "slack_users_v1",
        "slack_channels_v1",
        "github_org_members_v1",
        "github_repo_collaborators_v1",
        "vcs_owners_v1",
        "jira_issues_v1",
        "jira_projects_v1",
    }
)
"""Root fields served entirely from the shared cache: results of queries made only of them may
be reused by the result cache while their data's local copies live."""


@strawberry.type
class Query:
    """Read-only data: gateway facts, cached upstream data and reconcile tasks."""

    gateway_info_v1: GatewayInfo = strawberry.field(
        resolver=gateway_info,
        extensions=scope("read"),
        description="This gateway's version, Redis mode and upstream accounts",
    )

    pagerduty_schedules_v1: list[PagerDutySchedule | None] = strawberry.field(
        resolver=pagerduty_schedules,
        extensions=bounded("read"),
        description="Schedules of PagerDuty `instance` with their on-call users, cached",
    )
    pagerduty_escalation_policies_v1: list[PagerDutyEscalationPolicy | None] = strawberry.field(
        resolver=pagerduty_escalation_policies,
        extensions=bounded("read"),
        description="Escalation policies of PagerDuty `instance` with the users they page now",
    )

    slack_usergroups_v1: list[SlackUsergroup] = strawberry.field(
        resolver=slack_usergroups,
        extensions=bounded("read"),
        description="Usergroups of Slack `workspace` (all, or by handle), cached",
    )
    slack_users_v1: list[SlackUser] = strawberry.field(
        resolver=slack_users,
        extensions=bounded("read"),
        description="Active users of Slack `workspace` (all, or by org username), cached",
    )
    slack_channels_v1: list[SlackChannel] = strawberry.field(
        resolver=slack_channels,
        extensions=bounded("read"),
        description="Unarchived channels of Slack `workspace` (all, or by name), cached",
    )
    github_org_members_v1: list[GitHubUser] = strawberry.field(
        resolver=github_org_members,
        extensions=bounded("read"),
        description="Members of GitHub `org` (read with the account named `org`), cached",
    )
    github_repo_collaborators_v1: list[GitHubRepo | None] = strawberry.field(
        resolver=github_repo_collaborators,
        extensions=bounded("read"),
        description="Collaborators of `owner/name` repositories (account named `owner`), cached",
    )
    vcs_owners_v1: VcsOwners = strawberry.field(
        resolver=vcs_owners,
        extensions=bounded("read"),
        description="Approvers and reviewers of `path` from OWNERS files (GitHub), cached",
    )
    jira_issues_v1: list[JiraIssue | None] = strawberry.field(
        resolver=jira_issues,
        extensions=bounded("read"),
        description="Issues of Jira `instance` by `keys` or by `jql` (exactly one), cached",
    )
    jira_projects_v1: list[JiraProject | None] = strawberry.field(
        resolver=jira_projects,
        extensions=bounded("read"),
        description="Projects of Jira `instance` by `keys`, or all of them, cached",
    )
    reconcile_task_v1: ReconcileTask = strawberry.field(
        resolver=reconcile_task,
        extensions=bounded(*READ_TASK_SCOPES),
        description="A reconcile task by id, after waiting up to `wait_seconds` (0..300) for "
        "its end; still pending or running when the wait expires",
    )
