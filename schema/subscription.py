"""The root Subscription: streams a listener follows over graphql-transport-ws."""

from collections.abc import AsyncGenerator

import strawberry

from schema.events import EventV1, events, events_durable
from schema.permissions import scope
from schema.tasks import READ_TASK_SCOPES, ReconcileTask, reconcile_task_changes


@strawberry.type
class Subscription:
    """Live and durable event streams, and reconcile task status."""

    events_v1: AsyncGenerator[EventV1, None] = strawberry.subscription(
        resolver=events,
        extensions=scope("events"),
        description="Live events of `types` (all when absent). With `since` (a `stream_id`) the "
        "retained events after it come first, then live ones, with no gap or duplicate. A "
        "listener that falls behind ends with SUBSCRIPTION_DROPPED (reason `queue_full`, "
        "`last_id` to resume with `since`)",
    )
    events_durable_v1: AsyncGenerator[EventV1, None] = strawberry.subscription(
        resolver=events_durable,
        extensions=scope("events"),
        description="Events delivered through consumer `group`: what the group missed while "
        "nobody listened comes first, listeners of one group share the load. Acknowledge each "
        "`stream_id` with `events_ack_v1`; unacknowledged ones go to another listener after the "
        "visibility timeout and to the dead letters after the last allowed delivery. Events "
        "not of `types` are acknowledged by the gateway",
    )
    reconcile_task_v1: AsyncGenerator[ReconcileTask, None] = strawberry.subscription(
        resolver=reconcile_task_changes,
        extensions=scope(*READ_TASK_SCOPES),
        description="The task now and at each status change; completes when the task ends",
    )
