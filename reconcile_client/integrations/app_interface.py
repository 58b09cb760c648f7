"""What every integration reading app-interface shares: quoting a value in a message, and
whether a role has expired."""

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
