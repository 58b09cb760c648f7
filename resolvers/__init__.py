"""One package per external system; `Sources` holds every configured account's source."""

from dataclasses import dataclass, field
from typing import TypeVar

from gateway.errors import BadUserInput
from gateway.ratelimit import PAGERDUTY, SLACK_TIER_2, Bucket, BucketSpec
from gateway.runtime import Runtime
from gateway.settings import UpstreamAccountSettings
from gateway.upstream import UpstreamAccount, UpstreamClient, UpstreamPolicy
from resolvers.pagerduty.api import PagerDutyApi
from resolvers.pagerduty.source import PagerDutySource
from resolvers.slack.api import SlackApi
from resolvers.slack.source import SlackSource

T = TypeVar("T")


def _configured_spec(account: UpstreamAccountSettings) -> BucketSpec | None:
    limit = account.rate_limit
    if limit is None:
        return None
    return BucketSpec.within(limit.requests, limit.per_seconds, burst=limit.burst)


def _spec(account: UpstreamAccountSettings, default: BucketSpec) -> BucketSpec:
    return _configured_spec(account) or default


def upstream_client(
    runtime: Runtime,
    system: str,
    account: UpstreamAccountSettings,
    tier: str,
    spec: BucketSpec,
    headers: dict[str, str],
) -> UpstreamClient:
    """A pooled client for one account, drawing on the shared bucket (system, account, tier)."""
    return UpstreamClient(
        UpstreamAccount(
            system=system,
            name=account.name,
            base_url=account.api_url,
            bucket=Bucket(system, account.name, tier, _spec(account, spec)),
            headers=headers,
        ),
        runtime.limiter,
        runtime.upstream_metrics,
        UpstreamPolicy(read_timeout=account.timeout),
    )


@dataclass
class Sources:
    """The cached, rate-limited sources of every configured upstream account, by name."""

    pagerduty: dict[str, PagerDutySource] = field(default_factory=dict)
    slack: dict[str, SlackSource] = field(default_factory=dict)
    clients: list[UpstreamClient] = field(default_factory=list)

    @classmethod
    def create(cls, runtime: Runtime) -> "Sources":
        """Sources for the accounts in `runtime.settings.upstreams`; reads their credentials."""
        sources = cls()
        for account in runtime.settings.upstreams.pagerduty:
            token = account.token.read().get_secret_value()
            client = upstream_client(
                runtime,
                "pagerduty",
                account,
                "api",
                PAGERDUTY,
                {
                    "Authorization": f"Token token={token}",
                    "Accept": "application/vnd.pagerduty+json;version=2",
                },
            )
            sources.clients.append(client)
            sources.pagerduty[account.name] = PagerDutySource(
                account.name, PagerDutyApi(client), runtime.cache, account.ttl
            )
        for account in runtime.settings.upstreams.slack:
            token = account.token.read().get_secret_value()
            client = upstream_client(
                runtime,
                "slack",
                account,
                "tier2",
                SLACK_TIER_2,
                {"Authorization": f"Bearer {token}"},
            )
            sources.clients.append(client)
            api = SlackApi(client, rate_limit=_configured_spec(account))
            sources.slack[account.name] = SlackSource(account.name, api, runtime.cache, account.ttl)
        return sources

    def pagerduty_instance(self, name: str) -> PagerDutySource:
        """The source for PagerDuty instance `name`, or BAD_USER_INPUT."""
        return _named(self.pagerduty, "PagerDuty instance", name)

    def slack_workspace(self, name: str) -> SlackSource:
        """The source for Slack workspace `name`, or BAD_USER_INPUT."""
        return _named(self.slack, "Slack workspace", name)

    async def aclose(self) -> None:
        """Close every upstream connection pool."""
        for client in self.clients:
            await client.aclose()


def _named(accounts: dict[str, T], what: str, name: str) -> T:
    try:
        return accounts[name]
    except KeyError:
        known = ", ".join(sorted(accounts)) or "none"
        raise BadUserInput(f"unknown {what} {name!r}; configured: {known}") from None
