"""What `upstreams.qontract_server` takes: the one qontract-server the gateway federates."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.settings import Credential


class QontractServerSettings(BaseModel):
    """The qontract-server the gateway federates (see README, Federation)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="base URL, e.g. http://qontract-server:4000 (no /graphql)")
    token: Credential | None = Field(None, description="sent in Authorization, see auth_scheme")
    auth_scheme: Literal["basic", "bearer", "verbatim"] = Field(
        "verbatim",
        description="verbatim: the token as is (as qontract-reconcile sends it); basic: the "
        "credential holds `user:password`; bearer: `Bearer <token>`",
    )
    timeout: float = Field(30.0, gt=0, description="seconds per attempt")
    poll_interval: float = Field(
        10.0, gt=0, description="how often the latest sha is read (schema refresh)"
    )
    latest_ttl: float = Field(
        1.0, ge=0, description="seconds an unpinned request may reuse the latest sha read"
    )
    unknown_sha_wait: float = Field(
        2.0, ge=0, description="how long an unknown sha is retried (replica lag)"
    )
    answer_cache_bytes: int = Field(
        64 * 1024 * 1024,
        ge=0,
        description="qontract-server answers kept in process, in bytes as kept (compressed)",
    )
    redis_entry_bytes: int = Field(
        1024 * 1024,
        ge=0,
        description="largest answer shared through Redis, in bytes as stored (compressed)",
    )
    answer_ttl: float = Field(
        1200.0, gt=0, description="seconds a pinned answer is kept in Redis (BUNDLE_SHA_TTL)"
    )
