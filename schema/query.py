"""The root Query: one `_v1` field per external data set."""

import strawberry

from schema.gateway_info import GatewayInfo, gateway_info
from schema.pagerduty import (
    PagerDutyEscalationPolicy,
    PagerDutySchedule,
    pagerduty_escalation_policies,
    pagerduty_schedules,
)
from schema.permissions import scope
from schema.slack import (
    SlackChannel,
    SlackUser,
    SlackUsergroup,
    slack_channels,
    slack_usergroups,
    slack_users,
)

CACHE_BACKED_FIELDS = frozenset({"pagerduty_schedules_v1", "pagerduty_escalation_policies_v1"})


@strawberry.type
class Query:
    """Read-only data: gateway facts and cached upstream data."""

    gateway_info_v1: GatewayInfo = strawberry.field(
        resolver=gateway_info,
        extensions=scope("read"),
        description="This gateway's version, Redis mode and upstream accounts",
    )

    pagerduty_schedules_v1: list[PagerDutySchedule | None] = strawberry.field(
        resolver=pagerduty_schedules,
        extensions=scope("read"),
        description="Schedules of PagerDuty `instance` with their on-call users, cached",
    )
    pagerduty_escalation_policies_v1: list[PagerDutyEscalationPolicy | None] = strawberry.field(
        resolver=pagerduty_escalation_policies,
        extensions=scope("read"),
        description="Escalation policies of PagerDuty `instance` with the users they page now",
    )

    slack_usergroups_v1: list[SlackUsergroup] = strawberry.field(
        resolver=slack_usergroups,
        extensions=scope("read"),
        description="Usergroups of Slack `workspace` (all, or by handle), cached",
    )
    slack_users_v1: list[SlackUser] = strawberry.field(
        resolver=slack_users,
        extensions=scope("read"),
        description="Active users of Slack `workspace` (all, or by org username), cached",
    )
    slack_channels_v1: list[SlackChannel] = strawberry.field(
        resolver=slack_channels,
        extensions=scope("read"),
        description="Unarchived channels of Slack `workspace` (all, or by name), cached",
    )
