"""What every integration reading app-interface shares: quoting a value in a message, whether
a role has expired, and whether a cluster disables an integration."""

from collections.abc import Set
from datetime import UTC, datetime
from typing import Protocol

from reconcile_client.errors import ConfigError

EXPIRATION_DATE_FORMAT = "%Y-%m-%d"
SHOWN_CHARS = 64


class ExpiringRole(Protocol):
    """A role as any integration's operation reads it: its datafile path and expiration."""

    @property
    def path(self) -> str:
        """The role's datafile."""

    @property
    def expiration_date(self) -> str | None:
        """`expirationDate`, YYYY-MM-DD, or None when the role never expires."""


def shown(text: str) -> str:
    """`text` quoted for a message, cut at SHOWN_CHARS characters."""
    return repr(text[:SHOWN_CHARS] + ("..." if len(text) > SHOWN_CHARS else ""))


def role_active(role: ExpiringRole, now: datetime) -> bool:
    """False once `expirationDate` (YYYY-MM-DD, UTC) is today or past; ConfigError for a
    malformed date."""
    if not role.expiration_date:
        return True
    try:
        expires = datetime.strptime(role.expiration_date, EXPIRATION_DATE_FORMAT).date()
    except ValueError:
        raise ConfigError(
            f"role {role.path}: expirationDate {shown(role.expiration_date)} is not formatted "
            "as YYYY-MM-DD"
        ) from None
    return now.astimezone(UTC).date() < expires


class ClusterAutomations(Protocol):
    """A cluster's `disable` block as any integration's operation reads it."""

    @property
    def integrations(self) -> list[str] | None:
        """The integrations that must leave the cluster alone."""


class DisablingCluster(Protocol):
    """A cluster as any integration's operation reads it: its `disable` block."""

    @property
    def disable(self) -> ClusterAutomations | None:
        """`disable`, or None when the cluster disables nothing."""


def cluster_disables(cluster: DisablingCluster, integrations: Set[str]) -> bool:
    """Whether the cluster's `disable.integrations` names any of `integrations`."""
    disabled = cluster.disable.integrations if cluster.disable else None
    return not integrations.isdisjoint(disabled or [])
