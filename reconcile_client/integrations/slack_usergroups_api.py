"""slack-usergroups-api: Slack usergroups from app-interface, reconciled by the qontract-gateway."""

import asyncio
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from reconcile_client.errors import ConfigError, IntegrationFailed
from reconcile_client.gql.gateway import reconcile_task, slack_usergroups_reconcile
from reconcile_client.gql.gateway.pagerduty_users import ESCALATION_POLICY_USERS, SCHEDULE_USERS
from reconcile_client.gql.gateway.reconcile_task import (
    UsergroupAction,
    UsergroupCreate,
    UsergroupUpdateMetadata,
    UsergroupUpdateUsers,
)
from reconcile_client.gql.gateway.slack_usergroups_reconcile import (
    DesiredUsergroup,
    DesiredWorkspace,
    SlackUsergroupsReconcileInput,
    UsergroupConfig,
)
from reconcile_client.gql.gateway.vcs_owners import OWNERS_APPROVERS
from reconcile_client.gql.qontract_server import slack_usergroups_desired_state as desired
from reconcile_client.integration import QontractReconcileApiIntegration
from reconcile_client.operations import Fragment
from reconcile_client.params import PydanticRunParams

QONTRACT_INTEGRATION = "slack-usergroups-api"
WORKSPACE_INTEGRATION = "slack-usergroups"
TASK_WAIT_SECONDS = 300
SCHEDULE_TIME_FORMAT = "%Y-%m-%d %H:%M"
DEFAULT_OWNERS_REF = "master"
FINISHED = frozenset({"success", "failed"})


class SlackUsergroupsIntegrationParams(PydanticRunParams):
    """Narrow a run to one workspace and/or one usergroup handle."""

    workspace_name: str | None = None
    usergroup_name: str | None = None


@dataclass(frozen=True)
class OwnersRef:
    """A repository and the ref whose OWNERS approvers join a usergroup."""

    repo_url: str
    ref: str

    @classmethod
    def parse(cls, url_ref: str) -> "OwnersRef":
        """`https://host/org/repo` or `https://host/org/repo:ref` (ref defaults to master)."""
        if url_ref.count(":") == 2:
            url, ref = url_ref.rsplit(":", 1)
            return cls(url, ref)
        return cls(url_ref, DEFAULT_OWNERS_REF)


@dataclass
class Lookups:
    """Every PagerDuty and OWNERS lookup of a run, asked of the gateway in one request."""

    schedules: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    policies: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    owners: set[OwnersRef] = field(default_factory=set)

    def add(self, permission: desired.SlackUsergroupPermission) -> None:
        """Remember what `permission` needs looked up."""
        for target in permission.pagerduty or []:
            if target.scheduleID:
                self.schedules[target.instance.name].add(target.scheduleID)
            if target.escalationPolicyID:
                self.policies[target.instance.name].add(target.escalationPolicyID)
        self.owners.update(OwnersRef.parse(url) for url in permission.ownersFromRepos or [])

    def query(self) -> tuple[str, dict[str, Any], dict[str, tuple[str, Any]]] | None:
        """The document, its variables and what each alias answers; None with nothing to ask."""
        fields: list[str] = []
        declarations: list[str] = []
        variables: dict[str, Any] = {}
        aliases: dict[str, tuple[str, Any]] = {}
        used: list[Fragment[Any]] = []
        lists = (
            ("s", "pagerduty_schedules_v1", SCHEDULE_USERS, self.schedules),
            ("p", "pagerduty_escalation_policies_v1", ESCALATION_POLICY_USERS, self.policies),
        )
        for prefix, root_field, fragment, by_instance in lists:
            for n, instance in enumerate(sorted(by_instance)):
                alias = f"{prefix}{n}"
                declarations += [f"${alias}_instance: String!", f"${alias}_ids: [String!]!"]
                variables[f"{alias}_instance"] = instance
                variables[f"{alias}_ids"] = sorted(by_instance[instance])
                fields.append(
                    f"{alias}: {root_field}(instance: ${alias}_instance, ids: ${alias}_ids) "
                    f"{{ ...{fragment.name} }}"
                )
                aliases[alias] = (prefix, instance)
                if fragment not in used:
                    used.append(fragment)
        for n, owners in enumerate(sorted(self.owners, key=lambda o: (o.repo_url, o.ref))):
            alias = f"o{n}"
            declarations += [f"${alias}_repo: String!", f"${alias}_ref: String!"]
            variables.update({f"{alias}_repo": owners.repo_url, f"{alias}_ref": owners.ref})
            fields.append(
                f'{alias}: vcs_owners_v1(repo_url: ${alias}_repo, path: "/", ref: ${alias}_ref) '
                f"{{ ...{OWNERS_APPROVERS.name} }}"
            )
            aliases[alias] = ("o", owners)
            if OWNERS_APPROVERS not in used:
                used.append(OWNERS_APPROVERS)
        if not fields:
            return None
        body = "\n  ".join(fields)
        document = f"query SlackUsergroupsLookups({', '.join(declarations)}) {{\n  {body}\n}}\n"
        return document + "".join(f"\n{fragment.document}" for fragment in used), variables, aliases


@dataclass
class LookupResults:
    """PagerDuty usernames on call per (instance, id) and OWNERS approvers per repository."""

    schedules: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    policies: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    approvers: dict[OwnersRef, set[str]] = field(default_factory=dict)

    @classmethod
    def parse(
        cls, data: Mapping[str, Any], aliases: Mapping[str, tuple[str, Any]]
    ) -> "LookupResults":
        """Validate each alias's answer with its fragment's model."""
        results = cls()
        for alias, (kind, key) in aliases.items():
            if kind == "o":
                owners = OWNERS_APPROVERS.result.model_validate(data[alias])
                results.approvers[key] = set(owners.approvers)
                continue
            fragment: Fragment[Any] = SCHEDULE_USERS if kind == "s" else ESCALATION_POLICY_USERS
            target = results.schedules if kind == "s" else results.policies
            for item in data[alias]:
                entry = fragment.result.model_validate(item)
                target[(key, entry.id)] = {user.username for user in entry.users}
        return results


def active_slot_users(schedule: desired.Schedule | None, now: datetime) -> set[str]:
    """Org usernames of the schedule slots that contain `now` (UTC)."""
    users: set[str] = set()
    for slot in schedule.schedule if schedule else []:
        start = datetime.strptime(slot.start, SCHEDULE_TIME_FORMAT).replace(tzinfo=UTC)
        end = datetime.strptime(slot.end, SCHEDULE_TIME_FORMAT).replace(tzinfo=UTC)
        if start <= now <= end:
            users.update(user.org_username for user in slot.users)
    return users


def usergroup_users(
    permission: desired.SlackUsergroupPermission,
    users: Iterable[desired.User],
    lookups: LookupResults,
    now: datetime,
) -> list[str]:
    """Role users, active slot users, on-call users (pagerduty_username) and OWNERS approvers."""
    members = {user.org_username for role in permission.roles or [] for user in role.users}
    members |= active_slot_users(permission.schedule, now)
    on_call: set[str] = set()
    for target in permission.pagerduty or []:
        instance = target.instance.name
        if target.scheduleID:
            on_call |= lookups.schedules.get((instance, target.scheduleID), set())
        if target.escalationPolicyID:
            on_call |= lookups.policies.get((instance, target.escalationPolicyID), set())
    approvers = {
        name.lower()
        for url in permission.ownersFromRepos or []
        for name in lookups.approvers.get(OwnersRef.parse(url), set())
    }
    for user in users:
        if (user.pagerduty_username or user.org_username) in on_call:
            members.add(user.org_username)
        if user.github_username.lower() in approvers:
            members.add(user.org_username)
    return sorted(members)


def managed_permissions(
    data: desired.SlackUsergroupsDesiredStateData, params: SlackUsergroupsIntegrationParams
) -> list[desired.SlackUsergroupPermission]:
    """Usergroup permissions of workspaces run by slack-usergroups, narrowed by the params."""
    permissions = [
        permission
        for permission in data.permissions or []
        if isinstance(permission, desired.SlackUsergroupPermission)
        and not permission.skip
        and any(i.name == WORKSPACE_INTEGRATION for i in permission.workspace.integrations or [])
    ]
    if params.workspace_name is not None:
        known = sorted({p.workspace.name for p in permissions})
        permissions = [p for p in permissions if p.workspace.name == params.workspace_name]
        if not permissions:
            raise ConfigError(
                f"workspace {params.workspace_name!r} has no usergroups managed by "
                f"{WORKSPACE_INTEGRATION} in app-interface (known: {', '.join(known) or 'none'})"
            )
    if params.usergroup_name is not None:
        known = sorted({p.handle for p in permissions})
        permissions = [p for p in permissions if p.handle == params.usergroup_name]
        if not permissions:
            raise ConfigError(
                f"usergroup {params.usergroup_name!r} is not managed by {WORKSPACE_INTEGRATION} "
                f"in app-interface (known: {', '.join(known) or 'none'})"
            )
    return permissions


def desired_workspaces(
    permissions: Iterable[desired.SlackUsergroupPermission],
    users: Iterable[desired.User],
    lookups: LookupResults,
    now: datetime,
) -> list[DesiredWorkspace]:
    """The mutation's workspaces: usergroups with their users, description and channels."""
    users = list(users)
    workspaces: dict[str, DesiredWorkspace] = {}
    groups: dict[tuple[str, str], DesiredUsergroup] = {}
    for permission in permissions:
        workspace = workspaces.setdefault(
            permission.workspace.name,
            DesiredWorkspace(
                name=permission.workspace.name,
                managed_usergroups=permission.workspace.managedUsergroups,
                usergroups=[],
            ),
        )
        members = usergroup_users(permission, users, lookups, now)
        key = (workspace.name, permission.handle)
        if key in groups:
            config = groups[key].config
            config.users = sorted({*config.users, *members})
            continue
        group = DesiredUsergroup(
            handle=permission.handle,
            config=UsergroupConfig(
                description=permission.description or "",
                users=members,
                channels=sorted(set(permission.channels or [])),
            ),
        )
        groups[key] = group
        workspace.usergroups.append(group)
    return list(workspaces.values())


def channel_list(channels: list[str]) -> str:
    """Channel names joined by commas, `(none)` for an empty list."""
    return ",".join(channels) or "(none)"


def describe(action: UsergroupAction) -> str:
    """One readable line for an action: kind, workspace/handle and what changes."""
    details = ["(re-enable)"] if action.enable else []
    match action:
        case UsergroupCreate():
            kind = "create"
            details += [f"+{user}" for user in action.users]
            details += [
                f"description={action.description!r}",
                f"channels={channel_list(action.channels)}",
            ]
        case UsergroupUpdateUsers():
            kind = "update_users"
            details += [f"+{user}" for user in action.users_to_add]
            details += [f"-{user}" for user in action.users_to_remove]
        case UsergroupUpdateMetadata():
            kind = "update_metadata"
            if action.new_description is not None:
                details.append(f"description={action.new_description!r}")
            if action.new_channels is not None:
                details.append(f"channels={channel_list(action.new_channels)}")
    line = f"{kind} {action.workspace}/{action.usergroup}"
    return f"{line}: {' '.join(details)}" if details else line


class SlackUsergroupsIntegration(QontractReconcileApiIntegration[SlackUsergroupsIntegrationParams]):
    """Manage Slack usergroups (users, description, channels) through the qontract-gateway."""

    @property
    def name(self) -> str:
        """`slack-usergroups-api`."""
        return QONTRACT_INTEGRATION

    async def desired_state(self, now: datetime | None = None) -> list[DesiredWorkspace]:
        """Desired workspaces from qontract-server plus one gateway request for all lookups."""
        data = await self.qontract_server.execute(desired.OPERATION)
        permissions = managed_permissions(data, self.params)
        lookups = Lookups()
        for permission in permissions:
            lookups.add(permission)
        results = LookupResults()
        query = lookups.query()
        if query is not None:
            document, variables, aliases = query
            answer = await self.gateway.execute_document(document, variables)
            results = LookupResults.parse(answer, aliases)
        return desired_workspaces(
            permissions, data.users or [], results, now or datetime.now(tz=UTC)
        )

    async def async_run(self, dry_run: bool) -> None:
        """Submit the desired state; a dry run waits for the actions and reports them."""
        workspaces = await self.desired_state()
        if not workspaces:
            print("nothing to reconcile: no usergroups selected")
            return
        request = SlackUsergroupsReconcileInput(dry_run=dry_run, workspaces=workspaces)
        accepted = await self.gateway.execute(
            slack_usergroups_reconcile.OPERATION, {"input": request.model_dump()}
        )
        task = accepted.slack_usergroups_reconcile_v1
        if not dry_run:
            print(f"reconcile task {task.id} accepted ({task.status})")
            return
        report(task.id, await self.wait_for(task.id))

    async def wait_for(self, task_id: str) -> reconcile_task.ReconcileTask:
        """The task once finished, or as it is after TASK_WAIT_SECONDS."""
        deadline = time.monotonic() + TASK_WAIT_SECONDS
        while True:
            remaining = math.ceil(deadline - time.monotonic())
            data = await self.gateway.execute(
                reconcile_task.OPERATION,
                {"id": task_id, "wait_seconds": max(0, min(remaining, TASK_WAIT_SECONDS))},
                read_timeout=max(remaining, 0) + 30,
            )
            task = data.reconcile_task_v1
            if task.status in FINISHED or remaining <= 0:
                return task
            await asyncio.sleep(min(1.0, max(remaining, 0)))


def report(task_id: str, task: reconcile_task.ReconcileTask) -> None:
    """Print every action; IntegrationFailed on errors, a failed task or one still pending."""
    if task.status not in FINISHED:
        raise IntegrationFailed(f"task {task_id} still {task.status} after {TASK_WAIT_SECONDS} s")
    result = task.slack_usergroups
    actions = result.actions if result else []
    errors = result.errors if result else []
    for action in actions:
        print(f"[dry-run] {describe(action)}")
    print(f"task {task_id}: {result.status if result else task.status}, {len(actions)} action(s)")
    for error in errors:
        print(f"error: {error}")
    if task.status == "failed" or errors:
        reason = task.error or f"{len(errors)} error(s)"
        raise IntegrationFailed(f"task {task_id} failed: {reason}")
