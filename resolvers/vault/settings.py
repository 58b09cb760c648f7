"""Vault instances as configured in `upstreams.vault`, validated here (not in gateway/)."""

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
)

from gateway.settings import AccountName, Credential, RateLimitSettings


def _local(credential: Credential) -> Credential:
    if credential.vault is not None:
        raise ValueError("a Vault login credential is an `env` or `file`, never a `vault` one")
    return credential


class AppRole(BaseModel):
    """AppRole login: a role id and a secret id, each from the environment or a file."""

    model_config = ConfigDict(extra="forbid")

    role_id: Credential
    secret_id: Credential
    mount: str = Field("approle", pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")

    _local = field_validator("role_id", "secret_id")(_local)


class AppRoleAuth(BaseModel):
    """`auth: {approle: {role_id, secret_id}}`."""

    model_config = ConfigDict(extra="forbid")

    approle: AppRole


class TokenAuth(BaseModel):
    """`auth: {token: {env | file}}`: a token made elsewhere, renewed while it allows."""

    model_config = ConfigDict(extra="forbid")

    token: Credential

    _local = field_validator("token")(_local)


def _auth_kind(value: Any) -> str | None:
    """`approle` or `token`, by the one key an `auth` mapping holds."""
    if isinstance(value, BaseModel):
        return "approle" if isinstance(value, AppRoleAuth) else "token"
    if isinstance(value, dict) and len(value) == 1:
        kind = next(iter(value))
        return kind if kind in ("approle", "token") else None
    return None


VaultAuth = Annotated[
    Annotated[AppRoleAuth, Tag("approle")] | Annotated[TokenAuth, Tag("token")],
    Discriminator(
        _auth_kind,
        custom_error_type="vault_auth",
        custom_error_message="auth holds exactly one of `approle` or `token`",
    ),
]


class VaultAccountSettings(BaseModel):
    """One Vault (or OpenBao) instance, named as the `instance` of credential references."""

    model_config = ConfigDict(extra="forbid")

    name: AccountName
    url: str = Field(pattern=r"^https?://[^/?#\s]+/?$", description="scheme, host and port")
    auth: VaultAuth
    namespace: str | None = Field(
        None, max_length=256, pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*/?$"
    )
    cache_ttl: float = Field(
        60.0, gt=0, le=3600, description="seconds a secret read is kept, in this process only"
    )
    cache_max_entries: int = Field(1_000, ge=1, description="secrets kept per process")
    timeout: float = Field(10.0, gt=0)
    rate_limit: RateLimitSettings | None = Field(
        None, description="default: 6,000 requests per minute per instance"
    )
