"""Slack, declared to the system registry: workspaces, limits, TTLs, fields and task kinds."""

from collections.abc import Mapping

from gateway.registry import Sources, System, SystemSchema, configured_spec
from gateway.runtime import Runtime
from gateway.settings import UpstreamAccountSettings
from gateway.tasks.kinds import TaskFunction
from gateway.upstream import UpstreamClient
from resolvers.slack.api import SLACK_TIER_2, SlackApi, slack_outage
from resolvers.slack.reconcile import TASK_KIND, SlackUsergroupsReconcile
from resolvers.slack.source import SlackSource
from schema.slack import SlackQuery
from schema.slack_chat import SlackChatMutation
from schema.slack_usergroups_reconcile import SlackUsergroupsMutation
from schema.slack_usergroups_types import TYPES, reconcile_result


def headers(token: str | None, account: UpstreamAccountSettings) -> dict[str, str]:
    """A bot token."""
    return {"Authorization": f"Bearer {token}"}


def source(
    account: UpstreamAccountSettings, client: UpstreamClient, runtime: Runtime
) -> SlackSource:
    """One workspace; its buckets are per method tier (see SlackApi)."""
    api = SlackApi(client, rate_limit=configured_spec(account.rate_limit))
    return SlackSource(account.name, api, runtime.cache, account.ttl)


def task_kinds(sources: Sources, runtime: Runtime) -> Mapping[str, TaskFunction]:
    """`slack-usergroups.reconcile`, on the process's shared sources."""
    return {TASK_KIND: SlackUsergroupsReconcile(sources, runtime.events.publisher).task}


SYSTEM = System(
    name="slack",
    account_noun="Slack workspace",
    settings=UpstreamAccountSettings,
    source_type=SlackSource,
    source=source,
    headers=headers,
    rate_limit=SLACK_TIER_2,
    tier="tier2",
    ttl=SlackSource.default_ttl,
    outage_signal=slack_outage,
    graphql=SystemSchema(
        queries=(SlackQuery,),
        mutations=(SlackUsergroupsMutation, SlackChatMutation),
        cache_backed=frozenset({"slack_usergroups_v1", "slack_users_v1", "slack_channels_v1"}),
        types=TYPES,
        results={TASK_KIND: reconcile_result},
    ),
    task_kinds=task_kinds,
)
