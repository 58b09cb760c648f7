"""The root Mutation's own fields: cache control and event acknowledgements."""

import strawberry
from strawberry.types import Info

from gateway.cache import CachePrefix
from gateway.errors import BadUserInput, shown
from schema.context import RequestContext
from schema.events import events_ack
from schema.permissions import scope


async def cache_invalidate(
    info: Info[RequestContext, None], system: str, account: str, data_type: str | None = None
) -> bool:
    """Resolve `cache_invalidate_v1`: drop an account's cached data (one data type or all)."""
    configured = info.context.sources.accounts()
    systems = sorted({name for name, _ in configured})
    if system not in systems:
        known = ", ".join(systems) or "none"
        raise BadUserInput(f"unknown system {shown(system)}; configured: {known}")
    accounts = sorted(name for sys_name, name in configured if sys_name == system)
    if account not in accounts:
        raise BadUserInput(
            f"unknown {system} account {account!r}; configured: {', '.join(accounts)}"
        )
    await info.context.runtime.cache.invalidate(CachePrefix(system, account, data_type))
    return True


@strawberry.type
class GatewayMutation:
    """The gateway's own changes: cache control and event acknowledgements (systems add theirs)."""

    cache_invalidate_v1: bool = strawberry.field(
        resolver=cache_invalidate,
        extensions=scope("admin"),
        description="Forget the cached data of one upstream account, or of one of its data types",
    )
    events_ack_v1: int = strawberry.mutation(
        resolver=events_ack,
        extensions=scope("events"),
        description="Acknowledge `events_durable_v1` deliveries of `group` by `stream_id`; "
        "returns how many were still pending",
    )
