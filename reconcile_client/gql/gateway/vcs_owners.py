"""Model of `vcs_owners.gql`: the approvers and reviewers of a repository's OWNERS files."""

from pydantic import BaseModel

from reconcile_client.operations import Fragment


class VcsOwners(BaseModel):
    """Fragment VcsOwners: GitHub logins allowed to approve and to review."""

    approvers: list[str]
    reviewers: list[str]


OWNERS = Fragment("VcsOwners", "gateway/vcs_owners.gql", VcsOwners)
