"""What the GitHub owners reconcile takes and returns: the request, actions and the result."""

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.settings import AccountName
from gateway.tasks.lease import resource_of
from gateway.tasks.reconcile import BaseReconcileRequest, BaseReconcileResult

LEASE_PREFIX = "github-owners"
MAX_ORGANIZATIONS = 500
MAX_OWNERS_PER_ORG = 20_000
MAX_OWNERS = 50_000
MAX_LOGIN_CHARS = 256
"""Bounds of a request however it arrives (a payload put straight into the queue included);
submission refuses far less, by `limits.*`, and a login longer than 39 characters."""

Login = Annotated[str, Field(max_length=MAX_LOGIN_CHARS)]


class OrganizationRequest(BaseModel):
    """One org (a configured GitHub account) and the logins that must be its owners."""

    model_config = ConfigDict(extra="forbid")

    org: AccountName
    owners: list[Login] = Field(default_factory=list, max_length=MAX_OWNERS_PER_ORG)


class ReconcileRequest(BaseReconcileRequest):
    """The owners each org should have; a dry run (the default) only computes the actions."""

    organizations: list[OrganizationRequest] = Field(
        default_factory=list, max_length=MAX_ORGANIZATIONS
    )

    @model_validator(mode="after")
    def _bounded(self) -> "ReconcileRequest":
        total = sum(len(organization.owners) for organization in self.organizations)
        if total > MAX_OWNERS:
            raise ValueError(f"at most {MAX_OWNERS} owners in all, not {total}")
        return self

    @property
    def resource(self) -> str:
        """What two real runs must not change at once: one lease per org."""
        return resource_of(f"{LEASE_PREFIX}:{org.org}" for org in self.organizations)


class OwnerTarget(BaseModel):
    """What every owner action names; owners are never removed."""

    org: str
    login: str = Field(description="the GitHub login, as the request spelled it")


class AddOwner(OwnerTarget):
    """Make `login` an owner (admin) of `org`; GitHub invites a login that is no member yet."""

    kind: Literal["add_owner"] = "add_owner"


OwnerAction = AddOwner
"""Every action a run may take: only adding (removal is never done)."""


@dataclass(frozen=True)
class OwnerError:
    """Why one login (or, with no login, a whole org) was not reconciled."""

    org: str
    login: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.org}/{self.login}" if self.login else self.org
        return f"{where}: {self.reason}"


class ReconcileResult(BaseReconcileResult):
    """The outcome of a run (see `BaseReconcileResult`)."""

    actions: list[OwnerAction] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list, description='"org/login: what failed"')
