"""Model of `vcs_owners.gql`: the approvers of a repository's OWNERS files."""

from pydantic import BaseModel

from reconcile_client.operations import Fragment


class VcsOwnersApprovers(BaseModel):
    """Fragment VcsOwnersApprovers: GitHub/GitLab usernames allowed to approve."""

    approvers: list[str]


OWNERS_APPROVERS = Fragment("VcsOwnersApprovers", "gateway/vcs_owners.gql", VcsOwnersApprovers)
