"""Variables the client sends (qenerate generates result types only): the reconcile inputs."""

from typing import Literal

from pydantic import BaseModel


class Notifications(BaseModel):
    """Messages for the users a real run adds or removes (published as events for DMs)."""

    add_user: str | None = None
    remove_user: str | None = None


class UsergroupConfig(BaseModel):
    """What a usergroup should look like."""

    description: str
    users: list[str]
    channels: list[str]
    notifications: Notifications | None = None


class DesiredUsergroup(BaseModel):
    """One usergroup by handle."""

    handle: str
    config: UsergroupConfig


class DesiredWorkspace(BaseModel):
    """One Slack workspace: the handles the gateway may touch and the wanted usergroups."""

    name: str
    managed_usergroups: list[str]
    usergroups: list[DesiredUsergroup]


class SlackUsergroupsReconcileInput(BaseModel):
    """The `slack_usergroups_reconcile_v1` mutation's `input` argument."""

    dry_run: bool = True
    workspaces: list[DesiredWorkspace]


class DesiredNamespace(BaseModel):
    """A namespace that must exist, or (with `delete`) must not."""

    name: str
    delete: bool = False


class DesiredCluster(BaseModel):
    """One cluster, by its app-interface name (configured in the gateway), and its namespaces."""

    name: str
    namespaces: list[DesiredNamespace]


class OpenShiftNamespacesReconcileInput(BaseModel):
    """The `openshift_namespaces_reconcile_v1` mutation's `input` argument."""

    dry_run: bool = True
    clusters: list[DesiredCluster]


class GitHubOwnersOrganization(BaseModel):
    """One GitHub org and the logins that must be its owners."""

    org: str
    owners: list[str]


class GitHubOwnersReconcileInput(BaseModel):
    """The `github_owners_reconcile_v1` mutation's `input` argument."""

    dry_run: bool = True
    organizations: list[GitHubOwnersOrganization]


class VcsFileOperation(BaseModel):
    """One file change of `vcs_file_sync_v1` (`VcsFileOperationInput_v1`), committed alone."""

    action: Literal["create", "update", "delete"]
    path: str
    content: str | None = None
    commit_message: str


class VcsFileSyncInput(BaseModel):
    """The `vcs_file_sync_v1` mutation's `input` argument."""

    dry_run: bool = True
    repo_url: str
    title: str
    description: str = ""
    target_branch: str
    operations: list[VcsFileOperation]
    labels: list[str] | None = None
    auto_merge: bool = False
