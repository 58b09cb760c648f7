"""Gateway settings: environment (prefix QONTRACT_GATEWAY_) over an optional YAML or TOML file."""

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from gateway.errors import shown

MIN_SECRET_BYTES = 32


class AuthSettings(BaseModel):
    """Bearer-token authentication."""

    secret: SecretStr | None = Field(None, description="HS256 signing key, at least 32 bytes")
    revoked_subjects: list[str] = Field(default_factory=list)
    default_expiry_days: int = 180

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and len(secret.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"auth.secret must be at least {MIN_SECRET_BYTES} bytes (HS256)")
        return secret


class QueryLimits(BaseModel):
    """Bounds on what one GraphQL request may ask for."""

    max_body_bytes: int = Field(
        1_048_576, ge=1, description="a request body, inflated when sent compressed (413 above)"
    )
    max_compressed_body_bytes: int = Field(
        1_048_576, ge=1, description="a gzip or deflate request body as sent (413 above)"
    )
    max_json_depth: int = Field(64, ge=1, description="nesting of the body's (or GET's) JSON")
    max_depth: int = 15
    max_aliases: int = 30
    max_tokens: int = 5_000
    document_cache_entries: int = 512
    document_cache_bytes: int = Field(
        64 * 1024 * 1024, description="estimated memory of cached parsed and validated documents"
    )
    introspection: bool = True
    max_subscriptions_per_connection: int = 20
    max_list_items: int = Field(1_000, ge=1, description="items in any one list argument")
    max_request_items: int = Field(
        5_000, ge=1, description="list items across every lookup field of one request"
    )
    max_string_length: int = Field(
        256, ge=1, description="characters in a string argument or list item (ids, names...)"
    )
    max_jql_length: int = Field(4_096, ge=1, description="characters in a Jira `jql` argument")
    max_path_length: int = Field(1_024, ge=1, description="characters in a `path` argument")
    max_path_segments: int = Field(32, ge=1, description="directories in a `path` argument")
    max_concurrent_fetches_per_request: int = Field(
        8, ge=1, description="upstream HTTP requests one GraphQL request has in flight"
    )
    max_concurrent_fetches: int = Field(
        64, ge=1, description="upstream HTTP requests one process has in flight"
    )
    max_entity_representations: int = Field(
        1000, ge=1, description="representations one `_entities` call may resolve"
    )


class HttpSettings(BaseModel):
    """How long and how much a client may take to send a request."""

    header_timeout: float = Field(
        10.0,
        gt=0,
        description="seconds to send a request's headers (from connect or first byte)",
    )
    body_timeout: float = Field(30.0, gt=0, description="seconds to send a request's body")
    max_header_bytes: int = Field(32_768, ge=1_024, description="request line and headers")


class MetricsSettings(BaseModel):
    """What may become a metric label."""

    operation_names: list[str] = Field(
        default_factory=list,
        description="operation names counted by name, added to reconcile_client's own; "
        "any other name is counted as `other`",
    )


class RedisSettings(BaseModel):
    """The shared Redis; with no URL the gateway starts a private embedded one."""

    url: str | None = None
    embedded: bool = Field(False, description="set by `serve` when it started the Redis itself")
    namespace: str = "qgw"
    socket_timeout: float = Field(
        1.0, gt=0, description="seconds one command may wait for its reply (a hung Redis)"
    )
    connect_timeout: float = Field(1.0, gt=0, description="seconds to open a connection")
    max_connections: int = Field(200, ge=1, description="connections of the shared pool")
    pool_timeout: float = Field(
        1.0, gt=0, description="seconds a command waits for a free pooled connection"
    )
    reserved_connections: int = Field(
        16, ge=1, description="a pool of its own for /readyz and the rate limiter"
    )


VAULT_PATH = r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$"


class VaultReference(BaseModel):
    """A secret in a configured Vault instance: app-interface's `VaultSecret_v1`, plus where."""

    model_config = ConfigDict(extra="forbid")

    instance: str = Field(description="the `name` of an `upstreams.vault` account")
    path: str = Field(
        max_length=1024,
        pattern=VAULT_PATH,
        description="mount and secret path, e.g. `app-sre/creds/pagerduty` (KV v1 or v2)",
    )
    field: str = Field(min_length=1, max_length=256, description="the key inside the secret")
    version: int | None = Field(None, ge=1, description="KV v2 only; default: the latest")


class Credential(BaseModel):
    """Where a secret lives: an environment variable, a file or Vault, never the value itself."""

    model_config = ConfigDict(extra="forbid")

    env: str | None = None
    file: Path | None = None
    vault: VaultReference | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "Credential":
        if [self.env, self.file, self.vault].count(None) != 2:
            raise ValueError("a credential names exactly one of `env`, `file` or `vault`")
        return self

    def read(self) -> SecretStr:
        """The secret of an `env` or `file` credential; InvalidSettings names the variable or
        file (never the value) if absent. A `vault` one is read through a `SecretReader`."""
        if self.vault is not None:
            raise InvalidSettings(
                f"credential in Vault instance {self.vault.instance!r} at {self.vault.path!r} "
                "is read through the Vault system, not at settings time"
            )
        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                raise InvalidSettings(f"credential variable {self.env} is not set")
            return SecretStr(value.strip())
        assert self.file is not None
        try:
            return SecretStr(self.file.read_text().strip())
        except OSError as error:
            raise InvalidSettings(f"credential file {self.file}: {error.strerror}") from None


class RateLimitSettings(BaseModel):
    """An upstream's published limit: `requests` per `per_seconds`, with a small burst."""

    requests: int = Field(gt=0)
    per_seconds: float = Field(gt=0)
    burst: int = Field(1, ge=1)


AccountName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
"""An upstream account's name, in settings and in reconcile requests that name accounts."""


class UpstreamAccountSettings(BaseModel):
    """One upstream account, named as in app-interface (`PagerDutyInstance_v1.name`...).

    A system with options of its own subclasses this in its `resolvers/<system>/` folder.
    """

    model_config = ConfigDict(extra="forbid")

    name: AccountName
    api_url: str
    token: Credential
    rate_limit: RateLimitSettings | None = Field(
        None, description="defaults to the system's published limit"
    )
    ttl: dict[str, float] = Field(
        default_factory=dict, description="seconds per data type, over the system's defaults"
    )
    timeout: float = 10.0


class CacheSettings(BaseModel):
    """The two-tier cache: a short in-process tier in front of Redis."""

    local_ttl: float = 1.0
    local_max_entries: int = 10_000
    max_stale: float = Field(3600.0, description="how long past its TTL a copy may be served")
    lease: float = 5.0
    result_cache_entries: int = Field(
        1024, description="serialised results of cache-backed queries kept per process; 0: off"
    )


class EventSettings(BaseModel):
    """Events: where every process publishes, and how subscribers and consumer groups read."""

    enabled: bool = Field(True, description="false: the gateway publishes nothing")
    backend: Literal["redis", "sns"] = "redis"
    stream_maxlen: int = Field(100_000, gt=0, description="entries the Redis stream retains")
    block_ms: int = Field(1_000, gt=0, description="how long one blocking stream read waits")
    visibility_timeout: float = Field(
        30.0, gt=0, description="seconds before an unacknowledged delivery goes to another consumer"
    )
    max_deliveries: int = Field(5, ge=1, description="deliveries before an event is dead-lettered")
    fanout_queue_size: int = Field(
        1_000, gt=0, description="live events that may wait for one subscriber before it is dropped"
    )
    durable_batch_size: int = Field(10, gt=0, description="deliveries fetched per group read")
    max_durable_subscriptions: int = Field(
        200, gt=0, description="durable subscriptions one process serves (one connection each)"
    )
    max_ack_ids: int = Field(1_000, gt=0, description="stream ids one events_ack_v1 may settle")
    outage_grace: float = Field(
        3.0,
        ge=0,
        le=300,
        description="seconds of Redis outage live and durable subscriptions ride out; longer, "
        "they end with UPSTREAM_UNAVAILABLE (upstream redis)",
    )
    sns_topic_arn: str | None = None
    sqs_queue_url: str | None = Field(None, description="the SQS queue subscribed to the topic")
    sqs_dead_letter_queue_url: str | None = None
    sqs_group: str = Field(
        "default", description="the consumer group name the SQS queue stands for (sns backend)"
    )
    aws_endpoint_url: str | None = None
    aws_region: str | None = None

    @model_validator(mode="after")
    def _sns_has_a_topic(self) -> "EventSettings":
        if self.backend == "sns" and self.enabled and self.sns_topic_arn is None:
            raise ValueError("events.backend sns needs events.sns_topic_arn")
        return self


class TaskSettings(BaseModel):
    """The task engine: record lifetime, worker liveness and queues."""

    record_ttl: float = Field(86_400.0, gt=0, description="how long a task record is kept")
    heartbeat_interval: float = Field(2.0, gt=0, description="how often a running task renews")
    heartbeat_timeout: float = Field(
        10.0, gt=0, description="a running task silent this long is lost (and its lease free)"
    )
    max_attempts: int = Field(2, ge=1, description="runs of a task whose worker was lost")
    redispatch_after: float = Field(
        120.0,
        gt=0,
        description="a pending task not started this long is dispatched again (its queue may "
        "have died with its process); the claim keeps it to one run",
    )
    in_process_concurrency: int = Field(4, ge=1, description="task pool size in `serve --role all`")
    max_input_bytes: int = Field(
        1_048_576, gt=0, description="the JSON size of one task's input (one mutation)"
    )
    max_input_list_length: int = Field(
        10_000, gt=0, description="items of any one list in a task's input"
    )
    max_input_string_length: int = Field(
        4_096, gt=0, description="characters of any one string in a task's input"
    )
    caller_tasks: int = Field(
        2_000, gt=0, description="tasks one caller (token subject) may submit per record_ttl"
    )
    caller_input_bytes: int = Field(
        268_435_456, gt=0, description="input bytes one caller may store per record_ttl"
    )
    visibility_timeout: float = Field(
        900.0,
        gt=0,
        description="Celery/Redis broker: an unacknowledged message is redelivered after this; "
        "longer than any task runs (lost workers are found by heartbeat long before)",
    )

    @model_validator(mode="after")
    def _heartbeat_fits(self) -> "TaskSettings":
        if self.heartbeat_interval * 2 > self.heartbeat_timeout:
            raise ValueError("tasks.heartbeat_timeout must be at least twice heartbeat_interval")
        return self


class NotifierSettings(BaseModel):
    """`qontract-gateway notifier`: which events go where, and how deliveries are retried."""

    channels: dict[str, str] = Field(
        default_factory=dict,
        description="Slack workspace name to the channel (name or id) that gets action lines",
    )
    group: str = Field("notifier", pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
    consumer: str = Field(
        "notifier",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$",
        description="this replica's name in the group (one per replica; a restart keeps it)",
    )
    start_from: Literal["new", "oldest"] = Field(
        "new",
        description="where a group that does not exist yet starts: at new events, or at the "
        "oldest retained one (an existing group always resumes where it was)",
    )
    max_deliveries: int = Field(5, ge=1, description="attempts before an event is dead-lettered")
    retry_after: float = Field(
        30.0, gt=0, description="seconds before a failed or abandoned delivery is tried again"
    )
    batch_size: int = Field(
        50, gt=0, le=1_000, description="deliveries read and posted at once (one batch)"
    )
    lines_per_message: int = Field(
        50,
        ge=1,
        le=1_000,
        description="channel lines of one batch posted together in one Slack message (Slack "
        "takes about one message per second per channel); 1: a message per line",
    )
    concurrency: int = Field(
        1,
        ge=1,
        le=32,
        description="consumers in this process, each `<consumer>-<n>`, each in event order; "
        "1 keeps every message in event order",
    )
    sent_ttl: float = Field(
        604_800.0, gt=0, description="seconds a message is remembered as sent (never twice)"
    )
    host: str = "127.0.0.1"
    port: int = Field(4100, description="/healthz, /readyz and /metrics")


class TracingSettings(BaseModel):
    """OpenTelemetry tracing: off by default; spans go to an OTLP/HTTP collector when on."""

    enabled: bool = Field(False, description="true: record spans (and export them when configured)")
    otlp_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP traces URL (http://collector:4318/v1/traces); unset: the "
        "exporter's own OTEL_EXPORTER_OTLP_* environment variables decide",
    )
    service_name: str = Field("qontract-gateway", min_length=1, max_length=128)
    sample_ratio: float = Field(
        1.0, ge=0.0, le=1.0, description="share of new traces recorded (parents' choice is kept)"
    )


class InvalidSettings(ValueError):
    """Settings that do not validate; the message names fields, never their values."""


class Settings(BaseSettings):
    """Everything the gateway can be told; secrets are `SecretStr` and never printed."""

    model_config = SettingsConfigDict(
        env_prefix="QONTRACT_GATEWAY_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    host: str = "127.0.0.1"
    port: int = 4000
    workers: int = 1
    role: Literal["all", "api"] = "all"
    log_format: Literal["json", "console"] = "json"
    log_level: str = "INFO"
    graphql_path: str = "/graphql"
    redis: RedisSettings = Field(default_factory=RedisSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    limits: QueryLimits = Field(default_factory=QueryLimits)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    upstreams: dict[str, Any] = Field(
        default_factory=dict,
        description="accounts per system, `{<system>: [accounts]}`; checked at start-up by the "
        "system registry (gateway/registry.py), which names an unknown system or option",
    )
    events: EventSettings = Field(default_factory=EventSettings)
    tasks: TaskSettings = Field(default_factory=TaskSettings)
    notifier: NotifierSettings = Field(default_factory=NotifierSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)

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
        return env_settings, init_settings, file_secret_settings

    @property
    def redis_mode(self) -> Literal["embedded", "external"]:
        """`external` when a Redis URL is configured, else `embedded`."""
        return "embedded" if self.redis.embedded or not self.redis.url else "external"


def read_config_file(path: Path) -> dict[str, Any]:
    """The structured settings in a `.yaml`/`.yml` or `.toml` file."""
    text = path.read_text()
    if path.suffix == ".toml":
        return tomllib.loads(text)
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the top level must be a mapping")
    return data


CONFIG_FILE_VARIABLE = "QONTRACT_GATEWAY_CONFIG_FILE"


def load_settings(config_file: Path | None = None) -> Settings:
    """Settings from `config_file` (default $QONTRACT_GATEWAY_CONFIG_FILE), then the environment."""
    if config_file is None and os.environ.get(CONFIG_FILE_VARIABLE):
        config_file = Path(os.environ[CONFIG_FILE_VARIABLE])
    data = read_config_file(config_file) if config_file else {}
    try:
        return Settings(**data)
    except ValidationError as error:
        raise InvalidSettings(f"invalid settings: {validation_problems(error)}") from None


PROBLEMS_SHOWN = 10
"""Problems a validation error lists (the rest are counted): its size does not grow with input."""
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def validation_problems(error: ValidationError, location: str = "") -> str:
    """The first `PROBLEMS_SHOWN` problems of `error` as `field.path: message` under `location`,
    then how many more; never the input, and a key the input chose only as `shown` bounds it."""
    problems = error.errors(include_input=False, include_url=False)
    listed = [
        ".".join([location, *(_loc_part(part) for part in problem["loc"])]).lstrip(".")
        + f": {problem['msg']}"
        for problem in problems[:PROBLEMS_SHOWN]
    ]
    if len(problems) > PROBLEMS_SHOWN:
        listed.append(f"and {len(problems) - PROBLEMS_SHOWN} more problems")
    return "; ".join(listed)


def _loc_part(part: int | str) -> str:
    """A location step as a message shows it: an index or field name as is, another key (such
    as an extra key of the input) quoted and cut by `shown`."""
    text = str(part)
    return text if isinstance(part, int) or _FIELD_NAME.fullmatch(text) else shown(text)
