"""One package per external system; `Sources` holds every configured account's source."""

import functools
from dataclasses import dataclass, field
from typing import TypeVar

from gateway.credentials import CredentialHeaders, HeaderBuilder
from gateway.errors import BadUserInput, shown
from gateway.ratelimit import GITHUB, JIRA, PAGERDUTY, SLACK_TIER_2, Bucket, BucketSpec
from gateway.runtime import Runtime
from gateway.settings import Credential, UpstreamAccountSettings
from gateway.upstream import (
    OutageSignal,
    RateLimitSignal,
    UpstreamAccount,
    UpstreamClient,
    UpstreamPolicy,
    http_429,
    no_outage,
)
from resolvers.github import api as github_api
from resolvers.github.source import GitHubSource
from resolvers.jira import api as jira_api
from resolvers.jira.source import JiraSource
from resolvers.pagerduty.api import PagerDutyApi
from resolvers.pagerduty.source import PagerDutySource
from resolvers.qontract_server.api import QONTRACT_SERVER, QontractServerApi, auth_headers
from resolvers.qontract_server.source import UPSTREAM, QontractServerSource
from resolvers.slack.api import SlackApi, slack_outage
from resolvers.slack.source import SlackSource
from resolvers.vault.secrets import VaultSecrets

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
    credential: CredentialHeaders,
    rate_limit_signal: RateLimitSignal = http_429,
    outage_signal: OutageSignal = no_outage,
) -> UpstreamClient:
    """A pooled client for one account, drawing on the shared bucket (system, account, tier).

    Headers from an `env`/`file` credential are fixed; from a `vault` one, they are asked of
    `credential` per request (its value comes from Vault's short in-process cache).
    """
    return UpstreamClient(
        UpstreamAccount(
            system=system,
            name=account.name,
            base_url=account.api_url,
            bucket=Bucket(system, account.name, tier, _spec(account, spec)),
            headers=credential.fixed,
            rate_limit_signal=rate_limit_signal,
            outage_signal=outage_signal,
            credential_headers=credential.changing,
        ),
        runtime.limiter,
        runtime.upstream_metrics,
        UpstreamPolicy(read_timeout=account.timeout),
        runtime.fetch_slots,
    )


@dataclass
class Sources:
    """The cached, rate-limited sources of every configured upstream account, by name."""

    pagerduty: dict[str, PagerDutySource] = field(default_factory=dict)
    slack: dict[str, SlackSource] = field(default_factory=dict)
    github: dict[str, GitHubSource] = field(default_factory=dict)
    jira: dict[str, JiraSource] = field(default_factory=dict)
    qontract_server: QontractServerSource | None = None
    clients: list[UpstreamClient] = field(default_factory=list)
    vault: VaultSecrets = field(default_factory=lambda: VaultSecrets({}))
    credentials: list[tuple[str, CredentialHeaders]] = field(default_factory=list)

    @classmethod
    def create(cls, runtime: Runtime) -> "Sources":
        """Sources for the accounts in `runtime.settings.upstreams`; reads their `env`/`file`
        credentials (Vault ones are read by `start`, or at first use)."""
        sources = cls(vault=VaultSecrets.create(runtime))
        sources._add_pagerduty(runtime)
        sources._add_slack(runtime)
        sources._add_github(runtime)
        sources._add_jira(runtime)
        sources._add_qontract_server(runtime)
        return sources

    async def start(self) -> None:
        """Log in to Vault and read every credential kept there: a clear error if one fails."""
        await self.vault.start()
        for owner, credential in self.credentials:
            await credential.verify(owner)

    def _credential(
        self, owner: str, credential: Credential, build: HeaderBuilder
    ) -> CredentialHeaders:
        """The headers `build` makes from `owner`'s credential (Vault-backed or not)."""
        headers = CredentialHeaders(credential, build, self.vault)
        if headers.changing is not None:
            self.credentials.append((owner, headers))
        return headers

    def _add_qontract_server(self, runtime: Runtime) -> None:
        """The federated qontract-server, when configured; its token is never the caller's."""
        configured = runtime.settings.upstreams.qontract_server
        if configured is None:
            return
        credential = None
        if configured.token is not None:
            build = functools.partial(auth_headers, scheme=configured.auth_scheme)
            credential = self._credential("qontract-server", configured.token, build)
        client = UpstreamClient(
            UpstreamAccount(
                system=UPSTREAM,
                name="default",
                base_url=configured.url,
                bucket=Bucket(UPSTREAM, "default", "graphql", QONTRACT_SERVER),
                headers=credential.fixed if credential is not None else {},
                credential_headers=credential.changing if credential is not None else None,
            ),
            runtime.limiter,
            runtime.upstream_metrics,
            UpstreamPolicy(
                read_timeout=configured.timeout,
                max_attempts=3,
                max_total_seconds=configured.timeout,
                failure_threshold=3,
                cool_down=configured.poll_interval,
            ),
        )
        self.clients.append(client)
        self.qontract_server = QontractServerSource(
            QontractServerApi(client),
            runtime.cache,
            runtime.redis,
            runtime.settings.redis.namespace,
            configured,
        )

    def _add_pagerduty(self, runtime: Runtime) -> None:
        """One source per PagerDuty instance."""
        for account in runtime.settings.upstreams.pagerduty:
            headers = self._credential(
                _owner("pagerduty", account),
                account.token,
                lambda token: {
                    "Authorization": f"Token token={token}",
                    "Accept": "application/vnd.pagerduty+json;version=2",
                },
            )
            client = upstream_client(runtime, "pagerduty", account, "api", PAGERDUTY, headers)
            self.clients.append(client)
            self.pagerduty[account.name] = PagerDutySource(
                account.name, PagerDutyApi(client), runtime.cache, account.ttl
            )

    def _add_slack(self, runtime: Runtime) -> None:
        """One source per Slack workspace; buckets per method (see SlackApi)."""
        for account in runtime.settings.upstreams.slack:
            client = upstream_client(
                runtime,
                "slack",
                account,
                "tier2",
                SLACK_TIER_2,
                self._credential(
                    _owner("slack", account),
                    account.token,
                    lambda token: {"Authorization": f"Bearer {token}"},
                ),
                outage_signal=slack_outage,
            )
            self.clients.append(client)
            api = SlackApi(client, rate_limit=_configured_spec(account))
            self.slack[account.name] = SlackSource(account.name, api, runtime.cache, account.ttl)

    def _add_github(self, runtime: Runtime) -> None:
        """One source per GitHub account; the account name is the org (see GitHubSource)."""
        for account in runtime.settings.upstreams.github:
            client = upstream_client(
                runtime,
                "github",
                account,
                "rest",
                GITHUB,
                self._credential(_owner("github", account), account.token, github_api.headers),
                github_api.rate_limit_signal,
            )
            self.clients.append(client)
            self.github[account.name] = GitHubSource(
                account.name, github_api.GitHubApi(client), runtime.cache, account.ttl
            )

    def _add_jira(self, runtime: Runtime) -> None:
        """One source per Jira instance."""
        for account in runtime.settings.upstreams.jira:
            build = functools.partial(jira_api.headers, scheme=account.auth_scheme)
            headers = self._credential(_owner("jira", account), account.token, build)
            client = upstream_client(runtime, "jira", account, "rest", JIRA, headers)
            self.clients.append(client)
            self.jira[account.name] = JiraSource(
                account.name, jira_api.JiraApi(client), runtime.cache, account.ttl
            )

    def pagerduty_instance(self, name: str) -> PagerDutySource:
        """The source for PagerDuty instance `name`, or BAD_USER_INPUT."""
        return _named(self.pagerduty, "PagerDuty instance", name)

    def slack_workspace(self, name: str) -> SlackSource:
        """The source for Slack workspace `name`, or BAD_USER_INPUT."""
        return _named(self.slack, "Slack workspace", name)

    def github_org(self, name: str) -> GitHubSource:
        """The source for GitHub org `name` (the account of that name), or BAD_USER_INPUT."""
        return _named(self.github, "GitHub org", name)

    def jira_instance(self, name: str) -> JiraSource:
        """The source for Jira instance `name`, or BAD_USER_INPUT."""
        return _named(self.jira, "Jira instance", name)

    async def aclose(self) -> None:
        """Close every upstream connection pool and stop Vault token renewal."""
        for client in self.clients:
            await client.aclose()
        await self.vault.aclose()


def _owner(system: str, account: UpstreamAccountSettings) -> str:
    return f"{system} account {account.name!r}"


def _named(accounts: dict[str, T], what: str, name: str) -> T:
    try:
        return accounts[name]
    except KeyError:
        known = ", ".join(sorted(accounts)) or "none"
        raise BadUserInput(f"unknown {what} {shown(name)}; configured: {known}") from None
