"""The root Mutation: operations that change state."""

import strawberry

from schema.events import events_ack
from schema.permissions import scope


@strawberry.type
class Mutation:
    """Changes: acknowledgements (and, later, reconcile actions)."""

    events_ack_v1: int = strawberry.mutation(
        resolver=events_ack,
        extensions=scope("events"),
        description="Acknowledge `events_durable_v1` deliveries of `group` by `stream_id`; "
        "returns how many were still pending",
    )
