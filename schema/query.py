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
from schema.tasks import READ_TASK_SCOPES, ReconcileTask, reconcile_task


@strawberry.type
class Query:
    """Read-only data: gateway facts, cached upstream data and reconcile tasks."""

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
    reconcile_task_v1: ReconcileTask = strawberry.field(
        resolver=reconcile_task,
        extensions=scope(*READ_TASK_SCOPES),
        description="A reconcile task by id, after waiting up to `wait_seconds` (0..300) for "
        "its end; still pending or running when the wait expires",
    )
