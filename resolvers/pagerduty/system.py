"""PagerDuty, declared to the system registry: instances, their limit, TTLs and fields."""

from gateway.ratelimit import BucketSpec
from gateway.registry import System, SystemSchema
from gateway.runtime import Runtime
from gateway.settings import UpstreamAccountSettings
from gateway.upstream import UpstreamClient
from resolvers.pagerduty.api import PagerDutyApi
from resolvers.pagerduty.source import PagerDutySource
from schema.pagerduty import PagerDutyQuery

RATE_LIMIT = BucketSpec.within(960, 60, burst=9)
"""PagerDuty's REST API limit: 960 requests a minute per token."""


def headers(token: str | None, account: UpstreamAccountSettings) -> dict[str, str]:
    """A REST API v2 token."""
    return {
        "Authorization": f"Token token={token}",
        "Accept": "application/vnd.pagerduty+json;version=2",
    }


def source(
    account: UpstreamAccountSettings, client: UpstreamClient, runtime: Runtime
) -> PagerDutySource:
    """One PagerDuty instance."""
    return PagerDutySource(account.name, PagerDutyApi(client), runtime.cache, account.ttl)


SYSTEM = System(
    name="pagerduty",
    account_noun="PagerDuty instance",
    settings=UpstreamAccountSettings,
    source_type=PagerDutySource,
    source=source,
    headers=headers,
    rate_limit=RATE_LIMIT,
    ttl=PagerDutySource.default_ttl,
    graphql=SystemSchema(
        queries=(PagerDutyQuery,),
        cache_backed=frozenset({"pagerduty_schedules_v1", "pagerduty_escalation_policies_v1"}),
    ),
)
