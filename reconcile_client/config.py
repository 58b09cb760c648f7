"""Client configuration: environment (prefix QONTRACT_RECONCILE_API_) over a YAML or TOML file."""

import os
import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from reconcile_client.errors import ConfigError

ENV_PREFIX = "QONTRACT_RECONCILE_API_"
UNLEASH_URL_VARIABLE = "UNLEASH_API_URL"
UNLEASH_TOKEN_VARIABLE = "UNLEASH_CLIENT_ACCESS_TOKEN"


class Endpoint(BaseModel):
    """A GraphQL or HTTP service: URL, bearer token (value or file, never printed), timeout."""

    model_config = ConfigDict(extra="forbid")

    url: str
    token: SecretStr | None = None
    token_file: Path | None = None
    timeout: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _one_token_source(self) -> "Endpoint":
        if self.token is not None and self.token_file is not None:
            raise ValueError("set `token` or `token_file`, not both")
        return self

    def bearer_token(self) -> str | None:
        """The token, read from `token_file` when that is how it is configured."""
        if self.token is not None:
            return self.token.get_secret_value()
        if self.token_file is None:
            return None
        try:
            return self.token_file.read_text().strip()
        except OSError as error:
            raise ConfigError(f"token file {self.token_file}: {error.strerror}") from None

    def authorization(self) -> str | None:
        """The `Authorization` header value: `Bearer <token>`, or None without a token."""
        token = self.bearer_token()
        return f"Bearer {token}" if token else None


class QontractServerEndpoint(Endpoint):
    """qontract-server as qontract-reconcile reads it: the token verbatim, one pinned bundle."""

    pin_sha: bool = Field(True, description="GET /sha256 once, then query /graphqlsha/<sha>")
    validate_schemas: bool = Field(
        True, description="refuse answers touching schemas outside the integration's list"
    )

    def authorization(self) -> str | None:
        """The token as configured (e.g. `Basic ...`), sent as qontract-reconcile sends it."""
        return self.bearer_token()


class GatewayEndpoint(Endpoint):
    """The qontract-gateway; `ws_url` defaults to the URL with ws:// or wss://."""

    ws_url: str | None = None
    compress_min_bytes: int = Field(
        65_536, ge=0, description="request bodies this large or larger are sent gzip; 0 = never"
    )

    def websocket_url(self) -> str:
        """Where subscriptions connect (graphql-transport-ws)."""
        if self.ws_url:
            return self.ws_url
        return "ws" + self.url.removeprefix("http") if self.url.startswith("http") else self.url


class ClientConfig(BaseSettings):
    """Where the gateway, qontract-server and Unleash are, and the static feature flags."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid"
    )

    gateway: GatewayEndpoint | None = None
    qontract_server: QontractServerEndpoint | None = None
    unleash: Endpoint | None = None
    flags: dict[str, bool] = Field(
        default_factory=dict, description="static toggles by integration name; win over Unleash"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment wins over values passed in (which come from the config file)."""
        return env_settings, init_settings

    def require_gateway(self) -> GatewayEndpoint:
        """The gateway endpoint, or ConfigError naming the setting to set."""
        if self.gateway is None:
            raise ConfigError(f"no gateway configured (gateway.url or {ENV_PREFIX}GATEWAY__URL)")
        return self.gateway


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"config file {path}: {error.strerror}") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text) or {}
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"config file {path} is not valid: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping")
    return data


def _qontract_reconcile_unleash() -> dict[str, str] | None:
    """Unleash from qontract-reconcile's UNLEASH_API_URL and UNLEASH_CLIENT_ACCESS_TOKEN."""
    url = os.environ.get(UNLEASH_URL_VARIABLE)
    if not url or any(key.upper().startswith(f"{ENV_PREFIX}UNLEASH") for key in os.environ):
        return None
    token = os.environ.get(UNLEASH_TOKEN_VARIABLE)
    return {"url": url, "token": token} if token else {"url": url}


def load_config(path: Path | None = None) -> ClientConfig:
    """The configuration from `path` (YAML, or TOML by suffix) and the environment.

    Unleash comes from QONTRACT_RECONCILE_API_UNLEASH__* or the file's `unleash:` table, else
    from qontract-reconcile's UNLEASH_API_URL and UNLEASH_CLIENT_ACCESS_TOKEN.
    """
    data = _read_file(path) if path is not None else {}
    if "unleash" not in data and (unleash := _qontract_reconcile_unleash()) is not None:
        data["unleash"] = unleash
    try:
        return ClientConfig(**data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in error.errors(include_input=False, include_url=False)
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
