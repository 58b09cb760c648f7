"""The root Query's own fields: gateway facts and reconcile tasks (systems add theirs)."""

import strawberry

from schema.gateway_info import GatewayInfo, gateway_info
from schema.inputs import bounded
from schema.permissions import scope
from schema.tasks import READ_TASK_SCOPES, ReconcileTask, reconcile_task


@strawberry.type
class GatewayQuery:
    """Gateway facts, the first root field."""

    gateway_info_v1: GatewayInfo = strawberry.field(
        resolver=gateway_info,
        extensions=scope("read"),
        description="This gateway's version, Redis mode and upstream accounts",
    )


@strawberry.type
class TaskQuery:
    """Reconcile tasks, after every system's fields."""

    reconcile_task_v1: ReconcileTask = strawberry.field(
        resolver=reconcile_task,
        extensions=bounded(*READ_TASK_SCOPES),
        description="A reconcile task by id, after waiting up to `wait_seconds` (0..300) for "
        "its end; still pending or running when the wait expires",
    )
