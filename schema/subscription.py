"""The root Subscription: streams over graphql-transport-ws."""

from collections.abc import AsyncGenerator

import strawberry

from schema.permissions import scope
from schema.tasks import READ_TASK_SCOPES, ReconcileTask, reconcile_task_changes


@strawberry.type
class Subscription:
    """Live updates: reconcile task status."""

    reconcile_task_v1: AsyncGenerator[ReconcileTask, None] = strawberry.subscription(
        resolver=reconcile_task_changes,
        extensions=scope(*READ_TASK_SCOPES),
        description="The task now and at each status change; completes when the task ends",
    )
