"""Jira, declared to the system registry: instances (bearer or basic auth), limit, TTLs, fields."""

from typing import Literal

from pydantic import Field

from gateway.ratelimit import BucketSpec
from gateway.registry import System, SystemSchema
from gateway.runtime import Runtime
from gateway.settings import UpstreamAccountSettings
from gateway.upstream import UpstreamClient
from resolvers.jira import api
from resolvers.jira.source import JiraSource
from schema.jira import JiraQuery

RATE_LIMIT = BucketSpec.within(60, 60)
"""A conservative budget: Jira Cloud's cost-based limits publish no fixed rate."""


class JiraAccountSettings(UpstreamAccountSettings):
    """A Jira instance: a Data Center PAT (bearer) or Cloud's `email:api_token` (basic)."""

    auth_scheme: Literal["bearer", "basic"] = Field(
        "bearer", description="`basic` when the credential holds `email:api_token`"
    )


def headers(token: str | None, account: JiraAccountSettings) -> dict[str, str]:
    """Bearer or basic, as the account says."""
    return api.headers(token or "", account.auth_scheme)


def source(account: JiraAccountSettings, client: UpstreamClient, runtime: Runtime) -> JiraSource:
    """One Jira instance."""
    return JiraSource(account.name, api.JiraApi(client), runtime.cache, account.ttl)


SYSTEM = System(
    name="jira",
    account_noun="Jira instance",
    settings=JiraAccountSettings,
    source_type=JiraSource,
    source=source,
    headers=headers,
    rate_limit=RATE_LIMIT,
    tier="rest",
    ttl=JiraSource.default_ttl,
    graphql=SystemSchema(
        queries=(JiraQuery,), cache_backed=frozenset({"jira_issues_v1", "jira_projects_v1"})
    ),
)
