"""One LDAP server as configured in `upstreams.ldap` (the system registry validates the list)."""

from pathlib import Path

from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import parse_dn
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.settings import AccountName, Credential


class LdapAccountSettings(BaseModel):
    """One LDAP server and the service account that searches it (app-interface's LDAP settings).

    Only `ldap://` URLs: every connection is upgraded with STARTTLS before the bind, and the
    server's certificate must chain to `ca_file` (default: the system's trust store) and name
    the URL's host.
    """

    model_config = ConfigDict(extra="forbid")

    name: AccountName
    url: str = Field(
        pattern=r"^ldap://[A-Za-z0-9]([A-Za-z0-9.-]{0,252})(:[0-9]{1,5})?/?$",
        description="ldap://host[:port]; STARTTLS is always used (ldaps:// is not offered)",
    )
    base_dn: str = Field(max_length=1024, description="e.g. dc=example,dc=com")
    bind_dn: str = Field(max_length=1024, description="the service account's DN")
    bind_password: Credential
    ca_file: Path | None = Field(
        None, description="PEM CA certificates to trust; default: the system's trust store"
    )
    connect_timeout: float = Field(3.0, gt=0, description="seconds to open a connection")
    timeout: float = Field(10.0, gt=0, description="seconds one LDAP operation may take")
    max_attempts: int = Field(3, ge=1, le=10, description="tries of a batch on transient errors")
    max_connections: int = Field(
        4, ge=1, le=64, description="binds in flight at once (each batch is one bind)"
    )
    names_per_search: int = Field(
        100, ge=1, le=500, description="usernames in one search's OR filter"
    )
    ttl: dict[str, float] = Field(
        default_factory=dict, description="seconds per data type (`users`), over the defaults"
    )

    @field_validator("base_dn", "bind_dn")
    @classmethod
    def _distinguished_name(cls, value: str) -> str:
        try:
            parse_dn(value)
        except LDAPInvalidDnError:
            raise ValueError("not a distinguished name (RFC 4514)") from None
        return value

    @property
    def users_dn(self) -> str:
        """Where FreeIPA keeps active users: `cn=users,cn=accounts,<base_dn>`."""
        return f"cn=users,cn=accounts,{self.base_dn}"
