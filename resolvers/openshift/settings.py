"""OpenShift (or plain Kubernetes) clusters as configured in `upstreams.openshift`."""

from pydantic import BaseModel, ConfigDict, Field

from gateway.settings import AccountName, Credential, RateLimitSettings


class OpenShiftAccountSettings(BaseModel):
    """One cluster, named as its `Cluster_v1.name` in app-interface; callers name it, never
    its URL, so no request can point the gateway at another server. The system registry
    validates the list (`upstreams.openshift`) with this model and refuses repeated names."""

    model_config = ConfigDict(extra="forbid")

    name: AccountName
    server_url: str = Field(
        pattern=r"^https?://[^/?#\s]+/?$", description="the API server: scheme, host and port"
    )
    token: Credential = Field(description="a service account token, sent as `Bearer`")
    insecure_skip_tls_verify: bool = Field(
        False, description="skip the TLS certificate check (test clusters only)"
    )
    timeout: float = Field(10.0, gt=0)
    rate_limit: RateLimitSettings | None = Field(
        None, description="default: 3,000 requests per minute per cluster"
    )
    ttl: dict[str, float] = Field(
        default_factory=dict, description="seconds per data type, over the system's defaults"
    )
