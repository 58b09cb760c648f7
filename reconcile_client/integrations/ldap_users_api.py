"""ldap-users-api: app-interface users gone from LDAP, deleted by one merge request each."""

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from reconcile_client.errors import GatewayQueryError, IntegrationFailed
from reconcile_client.flags import feature_toggle_state
from reconcile_client.gql.gateway.vcs_file_sync_task import ReconcileTaskV1, VcsFileSyncResultV1
from reconcile_client.gql.inputs import VcsFileOperation, VcsFileSyncInput
from reconcile_client.gql.qontract_server.ldap_users_with_paths import UserV1
from reconcile_client.integration import QontractReconcileApiIntegration
from reconcile_client.integrations.ldap_users_files import (
    FileEditRefused,
    move_users,
    remove_from_schedule,
    remove_references,
)
from reconcile_client.integrations.ldap_users_state import (
    DEFAULT_MAX_DELETE_FRACTION,
    INTEGRATION,
    AppInterfaceUser,
    users_to_delete,
)
from reconcile_client.operations import (
    LDAP_USER,
    LDAP_USERS_WITH_PATHS,
    VCS_FILE,
    VCS_FILE_SYNC,
    VCS_FILE_SYNC_TASK,
)
from reconcile_client.params import PydanticRunParams
from reconcile_client.task_wait import FINISHED, wait_for_task

logger = logging.getLogger(__name__)

AUTO_MERGE_TOGGLE = f"{INTEGRATION}-allow-auto-merge-mrs"
"""qontract-reconcile's toggle for labelling the merge requests `bot/automerge`."""
SYNCS_AT_ONCE = 8
"""File-sync tasks one run has submitted and not yet seen end."""
USERNAMES_PER_FIELD = 1000
"""Usernames per `ldap_users_v1` alias: the gateway's default `limits.max_list_items`."""
INFRA_TITLE = "[create_ssh_key_mr] delete user(s)"
"""qontract-reconcile's title of the infra repository's merge request."""
DEFAULT_INFRA_PATHS = (
    "ansible/hosts/host_vars/bastion.ci.int.devshift.net",
    "ansible/hosts/group_vars/all",
)
"""qontract-reconcile's default `--infra-path`s."""


class LdapUsersIntegrationParams(PydanticRunParams):
    """Where LDAP is (a gateway LDAP account) and where the merge requests go."""

    ldap_instance: str
    app_interface_repo_url: str
    app_interface_target_branch: str = "master"
    infra_repo_url: str | None = None
    infra_target_branch: str = "master"
    infra_paths: list[str] = Field(default_factory=lambda: list(DEFAULT_INFRA_PATHS))
    labels: list[str] = Field(default_factory=lambda: ["ldap-users"])
    max_delete_fraction: float = Field(DEFAULT_MAX_DELETE_FRACTION, gt=0, le=1)


def repo_path(datafile: str) -> str:
    """A datafile's path in the app-interface repository: under `data/`."""
    path = datafile.strip().lstrip("/")
    return path if path == "data" or path.startswith("data/") else f"data/{path}"


def repo_paths(datafiles: Iterable[Any]) -> tuple[str, ...]:
    """The repository paths of `datafiles` (objects with a `path`), sorted, once each."""
    return tuple(sorted({repo_path(datafile.path) for datafile in datafiles}))


@dataclass(frozen=True)
class UserFiles:
    """An app-interface user: the datafiles deleted with it (user file first) and those
    edited to drop references to it (GABI instances and AWS accounts; schedules)."""

    username: str
    paths: tuple[str, ...]
    referencing: tuple[str, ...] = ()
    schedules: tuple[str, ...] = ()

    @classmethod
    def of(cls, user: UserV1) -> "UserFiles":
        """The user's files as repository paths: its own file and the credentials requests,
        SQL queries and SRE checkpoints of the user are deleted."""
        others = [*(user.requests or []), *(user.queries or []), *(user.sre_checkpoints or [])]
        paths = (repo_path(user.path), *repo_paths(others))
        referencing = repo_paths([*(user.gabi_instances or []), *(user.aws_accounts or [])])
        return cls(
            user.org_username,
            tuple(dict.fromkeys(paths)),
            referencing,
            repo_paths(user.schedules or []),
        )

    @property
    def title(self) -> str:
        """The merge request's title, qontract-reconcile's, so both find each other's MRs."""
        return f"[create_delete_user_mr] delete user {self.username}"

    def merge_request(
        self, repo_url: str, target_branch: str, edited: Mapping[str, str]
    ) -> "MergeRequest":
        """The app-interface merge request deleting the user's files and writing the
        `edited` texts by path, one commit each."""
        deletes = [
            VcsFileOperation(action="delete", path=path, commit_message=self.title)
            for path in self.paths
        ]
        updates = [
            VcsFileOperation(action="update", path=path, content=text, commit_message=self.title)
            for path, text in edited.items()
        ]
        return MergeRequest(
            self.username,
            repo_url,
            target_branch,
            self.title,
            f"delete user {self.username}: no longer in LDAP",
            (*deletes, *updates),
        )


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


@dataclass(frozen=True)
class MergeRequest:
    """One file-sync of a run: whose it is (a user, or `infra`), where, and what it changes."""

    owner: str
    repo_url: str
    target_branch: str
    title: str
    description: str
    operations: tuple[VcsFileOperation, ...]

    def outcome(self, task: ReconcileTaskV1, dry_run: bool) -> str:
        """What the file-sync task found or did, as one line."""
        result = task.typed_result
        prefix = f"{'[dry-run] ' if dry_run else ''}{self.owner}: "
        if not isinstance(result, VcsFileSyncResultV1) or result.outcome is None:
            return f"{prefix}task {task.q_id} {task.status.value}"
        match result.outcome:
            case "mr_exists":
                return f"{prefix}merge request exists: {result.mr_url}"
            case "mr_created":
                return f"{prefix}merge request created: {result.mr_url}"
        changes = ", ".join(f"{op.action} {op.path}" for op in self.operations)
        return f"{prefix}would open {self.title!r}: {changes}"

    def errors(self, task: ReconcileTaskV1) -> list[str]:
        """The task's errors (or why it did not finish), each naming the owner."""
        if task.status.value not in FINISHED:
            return [f"{self.owner}: task {task.q_id} still {task.status.value}"]
        result = task.typed_result
        errors = list(result.errors) if result is not None else []
        if task.error:
            errors.append(task.error)
        return [f"{self.owner}: {error}" for error in errors]


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
        """Find the users LDAP lost; submit one file-sync per user (and one on the infra
        repository when it is configured) and report every outcome.

        Nothing is submitted when LDAP's answer looks broken or too many users would go
        (DeletionAborted, exit 1); a file the text edit refuses is an error (exit 1) and its
        merge request (the user's, or the infra one) is not opened, the others are.
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
        params = self.params
        requests: list[MergeRequest] = []
        errors: list[str] = []
        for user in gone:
            try:
                edited = await self.references_removed(user)
            except FileEditRefused as refused:
                errors.append(f"{user.username}: no merge request: {refused}")
                continue
            requests.append(
                user.merge_request(
                    params.app_interface_repo_url, params.app_interface_target_branch, edited
                )
            )
        if params.infra_repo_url is not None:
            try:
                infra = await self.infra_merge_request(params.infra_repo_url, gone)
            except FileEditRefused as refused:
                errors.append(f"infra: {refused}")
            else:
                requests += [infra] if infra is not None else []
        auto_merge = await feature_toggle_state(AUTO_MERGE_TOGGLE, self.config, default=False)
        slots = asyncio.Semaphore(SYNCS_AT_ONCE)

        async def sync(mr: MergeRequest) -> ReconcileTaskV1:
            async with slots:
                return await self.sync(mr, dry_run, auto_merge)

        tasks = await asyncio.gather(*(sync(mr) for mr in requests))
        for mr, task in zip(requests, tasks, strict=True):
            print(mr.outcome(task, dry_run))
            errors += mr.errors(task)
        for error in errors:
            print(f"error: {error}")
        if errors:
            raise IntegrationFailed(f"{len(errors)} error(s) in {len(requests)} merge requests")

    async def infra_merge_request(
        self, repo_url: str, gone: Sequence[UserFiles]
    ) -> MergeRequest | None:
        """The one infra merge request moving `gone` to `deleted_users` in the vars files,
        each read past the gateway's cache; None when no file lists any of them."""
        usernames = {user.username for user in gone}
        branch = self.params.infra_target_branch
        operations = []
        for path in self.params.infra_paths:
            text = await self.fresh_text(repo_url, path, branch)
            if text is None:
                logger.info("infra: no file %s; skipped", path)
                continue
            edited = move_users(text, usernames, path)
            if edited is not None:
                operations.append(
                    VcsFileOperation(
                        action="update", path=path, content=edited, commit_message=INFRA_TITLE
                    )
                )
        if not operations:
            paths = ", ".join(self.params.infra_paths)
            print(f"infra: none of the {len(usernames)} users is in {paths}")
            return None
        names = ", ".join(sorted(usernames))
        return MergeRequest(
            "infra", repo_url, branch, INFRA_TITLE, f"delete user(s): {names}", tuple(operations)
        )

    async def fresh_text(self, repo_url: str, path: str, ref: str) -> str | None:
        """The text of a repository file read past the gateway's cache; None when missing."""
        try:
            found = await self.gateway.execute(
                VCS_FILE, {"repo_url": repo_url, "path": path, "ref": ref}
            )
        except GatewayQueryError as error:
            if error.code != "NOT_FOUND":
                raise
            return None
        return found.vcs_file_v1.text

    async def references_removed(self, user: UserFiles) -> dict[str, str]:
        """The GABI instances, AWS accounts and schedules referencing `user`, edited not to,
        by path (each read past the cache)."""
        repo_url = self.params.app_interface_repo_url
        branch = self.params.app_interface_target_branch
        edits = [
            *((path, remove_references) for path in user.referencing),
            *((path, remove_from_schedule) for path in user.schedules),
        ]
        edited = {}
        for path, edit in edits:
            text = await self.fresh_text(repo_url, path, branch)
            changed = None if text is None else edit(text, user.username, path)
            if changed is not None:
                edited[path] = changed
        return edited

    async def sync(self, mr: MergeRequest, dry_run: bool, auto_merge: bool) -> ReconcileTaskV1:
        """Submit the file-sync of `mr` and wait for its outcome."""
        request = VcsFileSyncInput(
            dry_run=dry_run,
            repo_url=mr.repo_url,
            title=mr.title,
            description=mr.description,
            target_branch=mr.target_branch,
            operations=list(mr.operations),
            labels=self.params.labels,
            auto_merge=auto_merge,
        )
        accepted = await self.gateway.execute(VCS_FILE_SYNC, {"input": request.model_dump()})
        return await wait_for_task(
            self.gateway,
            VCS_FILE_SYNC_TASK,
            accepted.vcs_file_sync_v1.q_id,
            lambda data: data.reconcile_task_v1,
        )
