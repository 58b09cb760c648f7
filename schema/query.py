"""The root Query: one `_v1` field per external data set."""

import strawberry

from schema.gateway_info import GatewayInfo, gateway_info
from schema.permissions import scope


@strawberry.type
class Query:
    """Read-only data: gateway facts and cached upstream data."""

    gateway_info_v1: GatewayInfo = strawberry.field(
        resolver=gateway_info,
        extensions=scope("read"),
        description="This gateway's version, Redis mode and upstream accounts",
    )
