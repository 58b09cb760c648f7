"""What one running gateway process holds: settings, the Redis client, metrics, auth."""

from dataclasses import dataclass

import redis.asyncio as aioredis

from gateway.auth import TokenVerifier
from gateway.metrics import GatewayMetrics
from gateway.settings import Settings


@dataclass
class Runtime:
    """Long-lived parts shared by every request of one app instance."""

    settings: Settings
    redis: "aioredis.Redis"
    metrics: GatewayMetrics
    verifier: TokenVerifier
