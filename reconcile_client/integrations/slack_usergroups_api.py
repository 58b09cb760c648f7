"""slack-usergroups-api: Slack usergroups from app-interface, reconciled by the qontract-gateway."""

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from reconcile_client.errors import ConfigError, GatewayQueryError, IntegrationFailed
from reconcile_client.gql.federated import slack_usergroups_joined as joined
from reconcile_client.gql.gateway.reconcile_task import (
    ReconcileTaskV1,
    SlackUsergroupActionV1,
    SlackUsergroupCreateV1,
    SlackUsergroupsReconcileResultV1,
    SlackUsergroupUpdateMetadataV1,
    SlackUsergroupUpdateUsersV1,
)
from reconcile_client.gql.inputs import DesiredWorkspace, SlackUsergroupsReconcileInput
from reconcile_client.gql.qontract_server import slack_usergroups_desired_state as desired
from reconcile_client.integration import (
    FINISHED,
    TASK_WAIT_SECONDS,
    QontractReconcileApiIntegration,
)
from reconcile_client.integrations.slack_usergroups_state import (
    INTEGRATION,
    DesiredStateInputs,
    OwnersRef,
    PagerDutyRef,
    RepoOwners,
    cluster_handle,
    desired_workspaces,
    selected_permissions,
)
from reconcile_client.operations import (
    ESCALATION_POLICY_USERS,
    OWNERS,
    SCHEDULE_USERS,
    SLACK_USERGROUPS_DESIRED_STATE,
    SLACK_USERGROUPS_JOINED,
    SLACK_USERGROUPS_RECONCILE,
    Fragment,
)
from reconcile_client.params import PydanticRunParams

logger = logging.getLogger(__name__)

LIVE_KEYS = frozenset({"oncall_users", "repo_owners"})
PAGERDUTY_FIELDS: dict[str, tuple[str, Fragment[Any]]] = {
    "schedule": ("pagerduty_schedules_v1", SCHEDULE_USERS),
    "escalation_policy": ("pagerduty_escalation_policies_v1", ESCALATION_POLICY_USERS),
}


class SlackUsergroupsIntegrationParams(PydanticRunParams):
    """Narrow a run to one workspace and/or one usergroup handle."""

    workspace_name: str | None = None
    usergroup_name: str | None = None


@dataclass
class Lookups:
    """Every PagerDuty and OWNERS lookup of a run, asked of the gateway in one request."""

    pagerduty: set[PagerDutyRef] = field(default_factory=set)
    owners: set[OwnersRef] = field(default_factory=set)

    @classmethod
    def of(cls, permissions: Iterable[desired.PermissionSlackUsergroupV1]) -> "Lookups":
        """What `permissions` need looked up."""
        lookups = cls()
        for permission in permissions:
            for target in permission.pagerduty or []:
                lookups.pagerduty.update(PagerDutyRef.of_target(target))
            owners = permission.owners_from_repos or []
            lookups.owners.update(OwnersRef.parse(url) for url in owners)
        return lookups

    def query(self) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
        """The document, its variables and what each alias answers; None with nothing to ask."""
        fields: list[str] = []
        declarations: list[str] = []
        variables: dict[str, Any] = {}
        aliases: dict[str, Any] = {}
        used: list[Fragment[Any]] = []
        groups: dict[tuple[str, str], list[str]] = {}
        for ref in self.pagerduty:
            groups.setdefault((ref.kind, ref.instance), []).append(ref.id)
        for n, (kind, instance) in enumerate(sorted(groups)):
            root_field, fragment = PAGERDUTY_FIELDS[kind]
            alias = f"p{n}"
            declarations += [f"${alias}_instance: String!", f"${alias}_ids: [String!]!"]
            variables[f"{alias}_instance"] = instance
            variables[f"{alias}_ids"] = sorted(groups[(kind, instance)])
            fields.append(
                f"{alias}: {root_field}(instance: ${alias}_instance, ids: ${alias}_ids) "
                f"{{ ...{fragment.name} }}"
            )
            aliases[alias] = (kind, instance)
            if fragment not in used:
                used.append(fragment)
        for n, owners in enumerate(sorted(self.owners, key=lambda o: (o.repo_url, o.ref))):
            alias = f"o{n}"
            declarations += [f"${alias}_repo: String!", f"${alias}_ref: String!"]
            variables.update({f"{alias}_repo": owners.repo_url, f"{alias}_ref": owners.ref})
            fields.append(
                f'{alias}: vcs_owners_v1(repo_url: ${alias}_repo, path: "/", ref: ${alias}_ref) '
                f"{{ ...{OWNERS.name} }}"
            )
            aliases[alias] = owners
            if OWNERS not in used:
                used.append(OWNERS)
        if not fields:
            return None
        body = "\n  ".join(fields)
        document = f"query SlackUsergroupsLookups({', '.join(declarations)}) {{\n  {body}\n}}\n"
        return document + "".join(f"\n{fragment.document}" for fragment in used), variables, aliases


@dataclass
class LookupResults:
    """PagerDuty usernames on call per target and the owners of each repository."""

    oncall: dict[PagerDutyRef, list[str]] = field(default_factory=dict)
    owners: dict[OwnersRef, RepoOwners] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: Mapping[str, Any], aliases: Mapping[str, Any]) -> "LookupResults":
        """Validate each alias's answer with its fragment's model."""
        results = cls()
        for alias, key in aliases.items():
            if isinstance(key, OwnersRef):
                owners = OWNERS.result.model_validate(data[alias])
                results.owners[key] = RepoOwners(tuple(owners.approvers), tuple(owners.reviewers))
                continue
            kind, instance = key
            fragment = PAGERDUTY_FIELDS[kind][1]
            for item in data[alias]:
                entry = fragment.result.model_validate(item)
                ref = PagerDutyRef(instance, kind, entry.q_id)
                results.oncall[ref] = [user.username for user in entry.users]
        return results

    @classmethod
    def of_joined(
        cls,
        permissions: Sequence[desired.PermissionV1],
        answered: Sequence[Mapping[str, Any]],
    ) -> "LookupResults":
        """The live fields of a joined answer (`answered`, its raw `permissions`, of which
        `permissions` are the validated desired state), keyed as the two-round-trip lookups.

        `oncall_users` is the target's schedule's (or, without one, its escalation policy's);
        `repo_owners` holds one entry per `ownersFromRepos` entry, in order. Only the live
        values are validated here (with the joined operation's models): the rest is validated
        once, as desired state.
        """
        results = cls()
        for permission, raw in zip(permissions, answered, strict=True):
            if not isinstance(permission, desired.PermissionSlackUsergroupV1):
                continue
            targets = zip(permission.pagerduty or [], raw.get("pagerduty") or [], strict=True)
            for target, raw_target in targets:
                users = [
                    joined.PagerDutyUserV1.model_validate(user).username
                    for user in raw_target.get("oncall_users") or []
                ]
                instance, policy = target.instance.name, target.escalation_policy_id
                if target.schedule_id:
                    schedule = PagerDutyRef(instance, "schedule", target.schedule_id)
                    results.oncall[schedule] = users
                    if policy:  # a target names one of them; the gateway answers the schedule
                        results.oncall.setdefault(
                            PagerDutyRef(instance, "escalation_policy", policy), []
                        )
                elif policy:
                    results.oncall[PagerDutyRef(instance, "escalation_policy", policy)] = users
            urls = permission.owners_from_repos or []
            owners = [joined.VcsOwnersV1.model_validate(o) for o in raw.get("repo_owners") or []]
            if len(owners) != len(urls):
                raise GatewayQueryError(
                    "qontract-gateway",
                    "BAD_RESPONSE",
                    f"usergroup {permission.handle}: {len(owners)} repo_owners for "
                    f"{len(urls)} ownersFromRepos entries",
                    [],
                )
            for url, found in zip(urls, owners, strict=True):
                results.owners[OwnersRef.parse(url)] = RepoOwners(
                    tuple(found.approvers), tuple(found.reviewers)
                )
        return results


def without_live_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """A joined answer's desired state as SlackUsergroupsDesiredState answers it."""
    permissions = []
    for permission in data.get("permissions") or []:
        kept = {key: value for key, value in permission.items() if key not in LIVE_KEYS}
        if kept.get("pagerduty"):
            kept["pagerduty"] = [
                {key: value for key, value in target.items() if key not in LIVE_KEYS}
                for target in kept["pagerduty"]
            ]
        permissions.append(kept)
    rest = {key: value for key, value in data.items() if key != "integrations"}
    return {**rest, "permissions": permissions}


def check_names(
    data: desired.SlackUsergroupsDesiredStateQueryData,
    permissions: Sequence[desired.PermissionSlackUsergroupV1],
    params: SlackUsergroupsIntegrationParams,
) -> None:
    """ConfigError when `--workspace-name` or `--usergroup-name` names nothing in app-interface."""
    managed = [p for p in permissions if not p.skip and p.workspace.managed_usergroups]
    if params.workspace_name is not None:
        known = sorted({p.workspace.name for p in managed})
        if params.workspace_name not in known:
            raise ConfigError(
                f"workspace {params.workspace_name!r} has no usergroups in app-interface "
                f"(known: {', '.join(known) or 'none'})"
            )
        managed = [p for p in managed if p.workspace.name == params.workspace_name]
    if params.usergroup_name is not None:
        clusters = {cluster_handle(cluster.name) for cluster in data.clusters or []}
        known = sorted({p.handle for p in managed} | clusters)
        if params.usergroup_name not in known:
            raise ConfigError(
                f"usergroup {params.usergroup_name!r} is not a usergroup in app-interface "
                f"(known: {', '.join(known) or 'none'})"
            )


def reconcile_input(
    workspaces: Iterable[DesiredWorkspace], dry_run: bool
) -> SlackUsergroupsReconcileInput:
    """The mutation's input; a handle listed twice in a workspace keeps its last config.

    qontract-reconcile sends both and its server's diff keeps the last; the gateway refuses
    duplicates, so they are collapsed here the same way.
    """
    collapsed = []
    for workspace in workspaces:
        counts = Counter(usergroup.handle for usergroup in workspace.usergroups)
        repeated = sorted(handle for handle, count in counts.items() if count > 1)
        if repeated:
            logger.warning(
                "%s: usergroups defined more than once, the last definition wins: %s",
                workspace.name,
                ", ".join(repeated),
            )
        by_handle = {usergroup.handle: usergroup for usergroup in workspace.usergroups}
        collapsed.append(workspace.model_copy(update={"usergroups": list(by_handle.values())}))
    return SlackUsergroupsReconcileInput(dry_run=dry_run, workspaces=collapsed)


def channel_list(channels: list[str]) -> str:
    """Channel names joined by commas, `(none)` for an empty list."""
    return ",".join(channels) or "(none)"


def describe(action: SlackUsergroupActionV1) -> str:
    """One readable line for an action: kind, workspace/handle and what changes."""
    details = ["(re-enable)"] if action.enable else []
    match action:
        case SlackUsergroupCreateV1():
            kind = "create"
            details += [f"+{user}" for user in action.users]
            details += [
                f"description={action.description!r}",
                f"channels={channel_list(action.channels)}",
            ]
        case SlackUsergroupUpdateUsersV1():
            kind = "update_users"
            details += [f"+{user}" for user in action.users_to_add]
            details += [f"-{user}" for user in action.users_to_remove]
        case SlackUsergroupUpdateMetadataV1():
            kind = "update_metadata"
            if action.new_description is not None:
                details.append(f"description={action.new_description!r}")
            if action.new_channels is not None:
                details.append(f"channels={channel_list(action.new_channels)}")
        case _:
            kind = action.typename
    line = f"{kind} {action.workspace}/{action.usergroup}"
    return f"{line}: {' '.join(details)}" if details else line


class SlackUsergroupsIntegration(QontractReconcileApiIntegration[SlackUsergroupsIntegrationParams]):
    """Manage Slack usergroups (users, description, channels) through the qontract-gateway."""

    @property
    def name(self) -> str:
        """`slack-usergroups-api`."""
        return INTEGRATION

    async def desired_state(self, now: datetime | None = None) -> list[DesiredWorkspace]:
        """Desired workspaces: in one joined query to a federating gateway, or (qontract-server
        configured) app-interface from qontract-server, then one gateway lookup."""
        live: LookupResults | None = None
        if self.federated:
            data, live = await self.joined_state()
        else:
            data = await self.qontract_server.execute(SLACK_USERGROUPS_DESIRED_STATE)
        permissions = [
            p for p in data.permissions if isinstance(p, desired.PermissionSlackUsergroupV1)
        ]
        check_names(data, permissions, self.params)
        workspace_name, usergroup_name = self.params.workspace_name, self.params.usergroup_name
        selected = selected_permissions(permissions, workspace_name, usergroup_name)
        results = live if live is not None else await self.lookups(selected)
        inputs = DesiredStateInputs(
            permissions=permissions,
            users=data.users or [],
            clusters=data.clusters or [],
            roles=data.roles or [],
            oncall=results.oncall,
            owners=results.owners,
        )
        return desired_workspaces(
            inputs, now or datetime.now(tz=UTC), workspace_name, usergroup_name
        )

    async def joined_state(
        self,
    ) -> tuple[desired.SlackUsergroupsDesiredStateQueryData, LookupResults]:
        """App-interface and every live lookup in one pinned request to the gateway."""
        raw = await self.qontract_server.execute_self_checked(SLACK_USERGROUPS_JOINED)
        data = self.qontract_server.validate(
            SLACK_USERGROUPS_DESIRED_STATE, without_live_fields(raw)
        )
        return data, LookupResults.of_joined(data.permissions, raw.get("permissions") or [])

    async def lookups(
        self, selected: Sequence[desired.PermissionSlackUsergroupV1]
    ) -> LookupResults:
        """Who is on call and who owns each repository, in one gateway request."""
        query = Lookups.of(selected).query()
        if query is None:
            return LookupResults()
        document, variables, aliases = query
        answer = await self.gateway.execute_document(document, variables)
        return LookupResults.parse(answer, aliases)

    async def async_run(self, dry_run: bool) -> None:
        """Submit the desired state; a dry run waits for the actions and reports them."""
        workspaces = await self.desired_state()
        if not workspaces:
            print("nothing to reconcile: no usergroups selected")
            return
        request = reconcile_input(workspaces, dry_run)
        accepted = await self.gateway.execute(
            SLACK_USERGROUPS_RECONCILE,
            {"input": request.model_dump(exclude_none=True)},
        )
        task = accepted.slack_usergroups_reconcile_v1
        if not dry_run:
            print(f"reconcile task {task.q_id} accepted ({task.status.value})")
            return
        report(task.q_id, await self.wait_for_task(task.q_id))


def report(task_id: str, task: ReconcileTaskV1) -> None:
    """Print every action; IntegrationFailed on errors, a failed task or one still pending."""
    status = task.status.value
    if status not in FINISHED:
        raise IntegrationFailed(f"task {task_id} still {status} after {TASK_WAIT_SECONDS} s")
    result = task.typed_result
    actions = result.actions if isinstance(result, SlackUsergroupsReconcileResultV1) else []
    errors = result.errors if result else []
    for action in actions:
        print(f"[dry-run] {describe(action)}")
    print(f"task {task_id}: {result.status if result else status}, {len(actions)} action(s)")
    for error in errors:
        print(f"error: {error}")
    if status == "failed" or errors:
        reason = task.error or f"{len(errors)} error(s)"
        raise IntegrationFailed(f"task {task_id} failed: {reason}")
