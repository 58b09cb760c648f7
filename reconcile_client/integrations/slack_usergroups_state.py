"""The desired Slack usergroups, as qontract-reconcile's slack-usergroups-api computes them.

A pure function of typed inputs: app-interface data (permissions, users, clusters, roles) and
live data (who is on call per PagerDuty target, who owns each repository). How the inputs are
fetched (two round trips, or one joined query at a federating gateway) is not its concern.
"""

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from reconcile_client.errors import ConfigError
from reconcile_client.gql.inputs import (
    DesiredUsergroup,
    DesiredWorkspace,
    Notifications,
    UsergroupConfig,
)
from reconcile_client.gql.qontract_server.slack_usergroups_desired_state import (
    ClusterV1 as Cluster,
)
from reconcile_client.gql.qontract_server.slack_usergroups_desired_state import (
    PagerDutyTargetV1 as PagerDutyTarget,
)
from reconcile_client.gql.qontract_server.slack_usergroups_desired_state import (
    PermissionSlackUsergroupV1 as SlackUsergroupPermission,
)
from reconcile_client.gql.qontract_server.slack_usergroups_desired_state import (
    ScheduleV1 as Schedule,
)
from reconcile_client.gql.qontract_server.slack_usergroups_desired_state import (
    SlackUsergroupsDesiredState_RoleV1 as Role,
)
from reconcile_client.gql.qontract_server.slack_usergroups_desired_state import (
    SlackUsergroupsDesiredState_RoleV1_UserV1 as ClusterRoleUser,
)
from reconcile_client.gql.qontract_server.slack_usergroups_desired_state import (
    SlackUsergroupsDesiredState_UserV1 as User,
)
from reconcile_client.gql.qontract_server.slack_usergroups_desired_state import (
    SlackWorkspaceV1 as SlackWorkspace,
)
from reconcile_client.integrations.app_interface import cluster_disables, role_active, shown

logger = logging.getLogger(__name__)

INTEGRATION = "slack-usergroups-api"
WORKSPACE_INTEGRATIONS = frozenset({"slack-usergroups", INTEGRATION})
SCHEDULE_TIME_FORMAT = "%Y-%m-%d %H:%M"
DEFAULT_OWNERS_REF = "master"
NOTIFICATION_FIELDS = {"addUser": "add_user", "removeUser": "remove_user"}


@dataclass(frozen=True)
class OwnersRef:
    """A repository and the ref whose root OWNERS approvers and reviewers join a usergroup."""

    repo_url: str
    ref: str

    @classmethod
    def parse(cls, url_ref: str) -> "OwnersRef":
        """`https://host/org/repo` (ref `master`) or `https://host/org/repo:ref` (two colons)."""
        if url_ref.count(":") == 2:
            url, ref = url_ref.rsplit(":", 1)
            return cls(url, ref)
        return cls(url_ref, DEFAULT_OWNERS_REF)


@dataclass(frozen=True)
class PagerDutyRef:
    """A PagerDuty schedule or escalation policy of an instance."""

    instance: str
    kind: Literal["schedule", "escalation_policy"]
    id: str

    @classmethod
    def of_target(cls, target: PagerDutyTarget) -> list["PagerDutyRef"]:
        """The schedule and/or the escalation policy a target names (both when both are set)."""
        refs = []
        if target.schedule_id:
            refs.append(cls(target.instance.name, "schedule", target.schedule_id))
        if target.escalation_policy_id:
            refs.append(cls(target.instance.name, "escalation_policy", target.escalation_policy_id))
        return refs


@dataclass(frozen=True)
class RepoOwners:
    """GitHub logins in a repository's root OWNERS (aliases expanded)."""

    approvers: tuple[str, ...]
    reviewers: tuple[str, ...]


@dataclass(frozen=True)
class DesiredStateInputs:
    """Everything the desired state depends on.

    `oncall` holds the PagerDuty usernames (local part of the e-mail) on call now for every
    target of the selected permissions, `owners` every `ownersFromRepos` entry's owners.
    """

    permissions: Sequence[SlackUsergroupPermission]
    users: Sequence[User]
    clusters: Sequence[Cluster]
    roles: Sequence[Role]
    oncall: Mapping[PagerDutyRef, Sequence[str]]
    owners: Mapping[OwnersRef, RepoOwners]


def selected_permissions(
    permissions: Iterable[SlackUsergroupPermission],
    workspace_name: str | None = None,
    usergroup_name: str | None = None,
) -> list[SlackUsergroupPermission]:
    """Permissions not skipped, of workspaces that manage usergroups, narrowed by name.

    A selected handle missing from its workspace's `managedUsergroups` is a ConfigError
    (qontract-reconcile raises KeyError there, before anything is reconciled).
    """
    selected = []
    for permission in permissions:
        workspace = permission.workspace
        if permission.skip or not workspace.managed_usergroups:
            continue
        if workspace_name and workspace.name != workspace_name:
            continue
        if usergroup_name and permission.handle != usergroup_name:
            continue
        if permission.handle not in workspace.managed_usergroups:
            raise ConfigError(
                f"[{workspace.name}] usergroup {shown(permission.handle)} is not in "
                f"'managedUsergroups' of the Slack workspace {workspace.path}"
            )
        selected.append(permission)
    return selected


def active_slot_users(schedule: Schedule | None, now: datetime) -> set[str]:
    """Org usernames of the slots that contain `now`; a slot in another format is a ConfigError."""
    users: set[str] = set()
    for slot in schedule.schedule if schedule else []:
        try:
            start = datetime.strptime(slot.start, SCHEDULE_TIME_FORMAT).replace(tzinfo=UTC)
            end = datetime.strptime(slot.end, SCHEDULE_TIME_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            assert schedule is not None
            raise ConfigError(
                f"schedule {schedule.path}: slot {shown(slot.start)} to {shown(slot.end)} is not "
                "in the format YYYY-MM-DD HH:MM (UTC), the only one qontract-reconcile reads"
            ) from None
        if start <= now <= end:
            users.update(user.org_username for user in slot.users)
    return users


@dataclass(frozen=True)
class UserIndex:
    """app-interface users by GitHub login (lower case), org username and PagerDuty username."""

    org_by_login: Mapping[str, str]
    by_org: Mapping[str, User]
    org_by_pagerduty: Mapping[str, str]

    @classmethod
    def of(cls, users: Iterable[User]) -> "UserIndex":
        """The index of `users` (a name used twice maps to its last user)."""
        users = list(users)
        return cls(
            org_by_login={user.github_username.lower(): user.org_username for user in users},
            by_org={user.org_username: user for user in users},
            org_by_pagerduty={
                user.pagerduty_username: user.org_username
                for user in users
                if user.pagerduty_username
            },
        )


def owners_users(
    urls: Iterable[str], owners: Mapping[OwnersRef, RepoOwners], users: UserIndex
) -> set[str]:
    """OWNERS approvers and reviewers by GitHub login, unless `tag_on_merge_requests` is false."""
    members: set[str] = set()
    for url in urls:
        found = owners[OwnersRef.parse(url)]
        for login in (*found.approvers, *found.reviewers):
            org_username = users.org_by_login.get(login.lower())
            user = users.by_org.get(org_username) if org_username else None
            if user is not None and user.tag_on_merge_requests is not False:
                members.add(user.org_username)
    return members


def oncall_users(
    targets: Iterable[PagerDutyTarget],
    oncall: Mapping[PagerDutyRef, Sequence[str]],
    users: UserIndex,
) -> set[str]:
    """On-call PagerDuty usernames as org usernames via `pagerduty_username`, else kept as is."""
    return {
        users.org_by_pagerduty.get(name, name)
        for target in targets
        for ref in PagerDutyRef.of_target(target)
        for name in oncall[ref]
    }


def notifications_of(permission: SlackUsergroupPermission) -> Notifications | None:
    """The usergroup's `addUser` / `removeUser` messages (several of one kind joined)."""
    messages: dict[str, list[str]] = {}
    for notification in permission.notifications or []:
        field = NOTIFICATION_FIELDS.get(notification.action)
        if field is None:
            raise ConfigError(
                f"[{permission.workspace.name}] usergroup {shown(permission.handle)}: unknown "
                f"notification action {shown(notification.action)} (addUser or removeUser)"
            )
        messages.setdefault(field, []).append(notification.message)
    if not messages:
        return None
    return Notifications.model_validate({k: "\n\n".join(v) for k, v in messages.items()})


def permission_usergroup(
    permission: SlackUsergroupPermission,
    inputs: DesiredStateInputs,
    users: UserIndex,
    now: datetime,
) -> DesiredUsergroup:
    """Role users, active slot users, OWNERS and on-call users of one permission."""
    members = {user.org_username for role in permission.roles or [] for user in role.users}
    members |= active_slot_users(permission.schedule, now)
    members |= owners_users(permission.owners_from_repos or [], inputs.owners, users)
    members |= oncall_users(permission.pagerduty or [], inputs.oncall, users)
    return DesiredUsergroup(
        handle=permission.handle,
        config=UsergroupConfig(
            description=permission.description or "",
            users=sorted(members),
            channels=sorted(set(permission.channels or [])),
            notifications=notifications_of(permission),
        ),
    )


def default_channel(workspace: SlackWorkspace) -> str | None:
    """The channel of the workspace's first slack-usergroups(-api) integration setting."""
    for integration in workspace.integrations or []:
        if integration.name in WORKSPACE_INTEGRATIONS:
            return integration.channel or None
    return None


def cluster_handle(cluster: str) -> str:
    """The usergroup of a cluster's users."""
    return f"{cluster}-cluster"


def tagged_on_cluster_updates(user: ClusterRoleUser, role: Role) -> bool:
    """The user's `tag_on_cluster_updates` when set, else the role's (unset is true)."""
    if user.tag_on_cluster_updates is not None:
        return user.tag_on_cluster_updates
    return role.tag_on_cluster_updates is not False


def cluster_members(
    clusters: Iterable[Cluster], roles: Iterable[Role], now: datetime, usergroup_name: str | None
) -> list[tuple[str, list[str]]]:
    """(name, sorted users) of each enabled cluster with users, in cluster order."""
    members: dict[str, set[str]] = {}
    for role in roles:
        if not role_active(role, now):
            continue
        for access in role.access or []:
            if access.namespace and access.namespace.managed_roles and not access.namespace.delete:
                name = access.namespace.cluster.name
            elif access.cluster and access.group:
                name = access.cluster.name
            else:
                continue
            if usergroup_name and cluster_handle(name) != usergroup_name:
                continue
            members.setdefault(name, set()).update(
                user.org_username for user in role.users if tagged_on_cluster_updates(user, role)
            )
    groups = []
    for cluster in clusters:
        if cluster_disables(cluster, WORKSPACE_INTEGRATIONS):
            continue
        if usergroup_name and cluster_handle(cluster.name) != usergroup_name:
            continue
        if users := members.get(cluster.name):
            groups.append((cluster.name, sorted(users)))
    return groups


def desired_workspaces(
    inputs: DesiredStateInputs,
    now: datetime,
    workspace_name: str | None = None,
    usergroup_name: str | None = None,
) -> list[DesiredWorkspace]:
    """The workspaces' desired usergroups, exactly as qontract-reconcile's slack-usergroups-api.

    Mirrors `compile_desired_state_from_permissions` then
    `compile_desired_state_cluster_usergroups`: usergroups in permission order (a handle
    repeated by two permissions is listed twice), workspaces in order of their first usergroup,
    a workspace without a slack-usergroups(-api) setting dropped with an error logged, and every
    `<cluster>-cluster` usergroup added to every workspace with the default channels of all of
    them (qontract-reconcile shares one channel list between the workspaces).
    """
    users = UserIndex.of(inputs.users)
    usergroups: dict[str, list[DesiredUsergroup]] = {}
    for permission in selected_permissions(inputs.permissions, workspace_name, usergroup_name):
        usergroup = permission_usergroup(permission, inputs, users, now)
        usergroups.setdefault(permission.workspace.name, []).append(usergroup)
    by_name = {permission.workspace.name: permission.workspace for permission in inputs.permissions}
    workspaces: list[DesiredWorkspace] = []
    channels: list[str] = []
    for name, groups in usergroups.items():
        channel = default_channel(by_name[name])
        if channel is None:
            logger.error("workspace %s has no slack-usergroups integration setting, skipping", name)
            continue
        managed = [usergroup_name] if usergroup_name else by_name[name].managed_usergroups
        workspaces.append(
            DesiredWorkspace(name=name, managed_usergroups=managed, usergroups=groups)
        )
        channels.append(channel)
    for cluster, members in cluster_members(inputs.clusters, inputs.roles, now, usergroup_name):
        handle = cluster_handle(cluster)
        description = f"Users with access to the {cluster} cluster"
        config = UsergroupConfig(description=description, users=members, channels=channels)
        for workspace in workspaces:
            workspace.usergroups.append(DesiredUsergroup(handle=handle, config=config))
            workspace.managed_usergroups = sorted({*workspace.managed_usergroups, handle})
    return workspaces
