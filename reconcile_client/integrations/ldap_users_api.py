"""ldap-users-api: app-interface users gone from LDAP, deleted by one merge request each."""

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from reconcile_client.errors import GatewayQueryError, IntegrationFailed
from reconcile_client.flags import feature_toggle_state
from reconcile_client.gql.gateway.reconcile_task import ReconcileTaskV1, VcsFileSyncResultV1
from reconcile_client.gql.inputs import VcsFileOperation
from reconcile_client.gql.qontract_server.ldap_users_with_paths import UserV1
from reconcile_client.integration import FINISHED, QontractReconcileApiIntegration
from reconcile_client.integrations.ldap_users_state import (
    DEFAULT_MAX_DELETE_FRACTION,
    INTEGRATION,
    AppInterfaceUser,
    users_to_delete,
)
from reconcile_client.operations import LDAP_USER, LDAP_USERS_WITH_PATHS, VCS_FILE_SYNC
from reconcile_client.params import PydanticRunParams

logger = logging.getLogger(__name__)

AUTO_MERGE_TOGGLE = f"{INTEGRATION}-allow-auto-merge-mrs"
"""qontract-reconcile's toggle for labelling the merge requests `bot/automerge`."""
USERNAMES_PER_FIELD = 1000
"""Usernames per `ldap_users_v1` alias: the gateway's default `limits.max_list_items`."""


class LdapUsersIntegrationParams(PydanticRunParams):
    """Where LDAP is (a gateway LDAP account) and where the merge requests go."""

    ldap_instance: str
    app_interface_repo_url: str
    app_interface_target_branch: str = "master"
    labels: list[str] = Field(default_factory=lambda: ["ldap-users"])
    max_delete_fraction: float = Field(DEFAULT_MAX_DELETE_FRACTION, gt=0, le=1)


def repo_path(datafile: str) -> str:
    """A datafile's path in the app-interface repository: under `data/`."""
    path = datafile.strip().lstrip("/")
    return path if path == "data" or path.startswith("data/") else f"data/{path}"


@dataclass(frozen=True)
class UserFiles:
    """An app-interface user and every datafile deleted with it, user file first."""

    username: str
    paths: tuple[str, ...]

    @classmethod
    def of(cls, user: UserV1) -> "UserFiles":
        """The user's file and the credentials requests, SQL queries and SRE checkpoints of
        the user, as repository paths."""
        others = [
            *(request.path for request in user.requests or []),
            *(query.path for query in user.queries or []),
            *(checkpoint.path for checkpoint in user.sre_checkpoints or []),
        ]
        paths = [repo_path(user.path), *sorted(repo_path(other) for other in others)]
        return cls(user.org_username, tuple(dict.fromkeys(paths)))

    @property
    def title(self) -> str:
        """The merge request's title, qontract-reconcile's, so both find each other's MRs."""
        return f"[create_delete_user_mr] delete user {self.username}"

    def operations(self) -> list[VcsFileOperation]:
        """One delete per file, each its own commit."""
        return [
            VcsFileOperation(action="delete", path=path, commit_message=self.title)
            for path in self.paths
        ]


def ldap_query(usernames: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """One document asking `ldap_users_v1` for every username, in aliases of at most
    USERNAMES_PER_FIELD; the instance is the variable `$instance`."""
    declarations = ["$instance: String!"]
    fields = []
    variables: dict[str, Any] = {}
    for n, start in enumerate(range(0, len(usernames), USERNAMES_PER_FIELD)):
        declarations.append(f"$u{n}: [String!]!")
        variables[f"u{n}"] = list(usernames[start : start + USERNAMES_PER_FIELD])
        fields.append(
            f"u{n}: ldap_users_v1(instance: $instance, usernames: $u{n}) {{ ...{LDAP_USER.name} }}"
        )
    body = "\n  ".join(fields)
    document = f"query LdapUsersCheck({', '.join(declarations)}) {{\n  {body}\n}}\n"
    return document + "\n" + LDAP_USER.document, variables


def ldap_answers(data: Mapping[str, Any]) -> dict[str, bool | None]:
    """Each username's answer (None for an item the gateway could not answer)."""
    answers: dict[str, bool | None] = {}
    for items in data.values():
        for item in items or []:
            if item is not None:
                user = LDAP_USER.result.model_validate(item)
                answers[user.username] = user.exists
    return answers


def outcome_line(user: UserFiles, task: ReconcileTaskV1, dry_run: bool) -> str:
    """What the file-sync task found or did for `user`, as one line."""
    result = task.typed_result
    prefix = "[dry-run] " if dry_run else ""
    if not isinstance(result, VcsFileSyncResultV1) or result.outcome is None:
        return f"{prefix}{user.username}: task {task.q_id} {task.status.value}"
    match result.outcome:
        case "mr_exists":
            return f"{prefix}{user.username}: merge request exists: {result.mr_url}"
        case "mr_created":
            return f"{prefix}{user.username}: merge request created: {result.mr_url}"
    return f"{prefix}{user.username}: would open {user.title!r} deleting {', '.join(user.paths)}"


def task_errors(user: UserFiles, task: ReconcileTaskV1) -> list[str]:
    """The task's errors (or why it did not finish), each naming the user."""
    if task.status.value not in FINISHED:
        return [f"{user.username}: task {task.q_id} still {task.status.value}"]
    result = task.typed_result
    errors = list(result.errors) if result is not None else []
    if task.error:
        errors.append(task.error)
    return [f"{user.username}: {error}" for error in errors]


class LdapUsersIntegration(QontractReconcileApiIntegration[LdapUsersIntegrationParams]):
    """Delete app-interface users that LDAP no longer has, through the qontract-gateway."""

    @property
    def name(self) -> str:
        """`ldap-users-api`."""
        return INTEGRATION

    async def app_interface_users(self) -> list[UserFiles]:
        """Every app-interface user with the files deleted with it."""
        data = await self.qontract_server.execute(LDAP_USERS_WITH_PATHS)
        return [UserFiles.of(user) for user in data.users or []]

    async def ldap_exists(self, usernames: Sequence[str]) -> dict[str, bool | None]:
        """LDAP's answer for every username, in one gateway request; a name the gateway could
        not answer for (its item is null, with its own error) is logged and left out."""
        document, variables = ldap_query(usernames)
        failed: list[GatewayQueryError] = []
        data, _ = await self.gateway.execute_with_extensions(
            document, {"instance": self.params.ldap_instance, **variables}, item_errors=failed
        )
        for error in failed:
            alias, index = error.path[-2], error.path[-1]
            name = variables[str(alias)][int(index)]
            logger.warning("LDAP gave no answer for %r, kept: %s", name, error.message)
        return ldap_answers(data)

    async def async_run(self, dry_run: bool) -> None:
        """Find the users LDAP lost; submit one file-sync per user and report every outcome.

        Nothing is submitted when LDAP's answer looks broken or too many users would go
        (DeletionAborted, exit 1).
        """
        users = await self.app_interface_users()
        if not users:
            print("no users in app-interface")
            return
        exists = await self.ldap_exists(sorted({user.username for user in users}))
        by_file = {user.paths[0]: user for user in users}
        deletions = users_to_delete(
            [AppInterfaceUser(user.username, user.paths[0]) for user in users],
            exists,
            self.params.max_delete_fraction,
        )
        gone = [by_file[user.path] for user in deletions.users]
        print(f"{len(gone)} of {len(users)} users are gone from LDAP")
        if not gone:
            return
        auto_merge = await feature_toggle_state(AUTO_MERGE_TOGGLE, self.config, default=False)
        tasks = await asyncio.gather(*(self.sync(user, dry_run, auto_merge) for user in gone))
        errors = []
        for user, task in zip(gone, tasks, strict=True):
            print(outcome_line(user, task, dry_run))
            errors += task_errors(user, task)
        for error in errors:
            print(f"error: {error}")
        if errors:
            raise IntegrationFailed(f"{len(errors)} of {len(gone)} merge requests failed")

    async def sync(self, user: UserFiles, dry_run: bool, auto_merge: bool) -> ReconcileTaskV1:
        """Submit the file-sync deleting `user`'s files and wait for its outcome."""
        accepted = await self.gateway.execute(
            VCS_FILE_SYNC,
            {
                "repo_url": self.params.app_interface_repo_url,
                "title": user.title,
                "description": f"delete user {user.username}: no longer in LDAP",
                "target_branch": self.params.app_interface_target_branch,
                "operations": [op.model_dump() for op in user.operations()],
                "labels": self.params.labels,
                "auto_merge": auto_merge,
                "dry_run": dry_run,
            },
        )
        return await self.wait_for_task(accepted.vcs_file_sync_v1.q_id)
