"""`gateway_info_v1`: what this gateway is and what it is connected to."""

import strawberry
from redis.exceptions import RedisError
from strawberry.types import Info

from gateway import __version__
from gateway.errors import redis_unavailable
from schema.context import RequestContext


@strawberry.type(name="GatewayUpstreamAccount_v1")
class GatewayUpstreamAccount:
    """An upstream account the gateway holds credentials for (never the credentials)."""

    system: str
    name: str


@strawberry.type(name="GatewayInfo_v1")
class GatewayInfo:
    """The gateway's version, its Redis and its configured upstream accounts."""

    version: str
    redis_mode: str = strawberry.field(description="`embedded` or `external`")
    upstream_accounts: list[GatewayUpstreamAccount]

    @strawberry.field(description="The shared Redis server's version; asks Redis")  # type: ignore[untyped-decorator]
    async def redis_version(self, info: Info[RequestContext, None]) -> str:
        """INFO server's redis_version, or UPSTREAM_UNAVAILABLE when Redis does not answer."""
        try:
            server = await info.context.runtime.redis.info("server")
        except (RedisError, OSError) as error:
            raise redis_unavailable(error) from None
        return str(server.get("redis_version", "unknown"))


def gateway_info(info: Info[RequestContext, None]) -> GatewayInfo:
    """Resolve `gateway_info_v1`."""
    settings = info.context.runtime.settings
    sources = info.context.sources
    return GatewayInfo(
        version=__version__,
        redis_mode=settings.redis_mode,
        upstream_accounts=[
            GatewayUpstreamAccount(system=system, name=name) for system, name in sources.accounts()
        ],
    )
