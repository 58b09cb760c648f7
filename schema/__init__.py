"""The GraphQL contract: types, root operations, extensions; `schema.graphql` is its export."""

from collections.abc import Callable, Sequence

import structlog
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.federation import Schema
from strawberry.printer import print_schema
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from gateway.errors import GatewayError
from gateway.graphql_errors import is_unexpected
from gateway.metrics import GatewayMetrics
from gateway.settings import QueryLimits
from schema.extensions import limit_extensions
from schema.mutation import Mutation
from schema.query import CACHE_BACKED_FIELDS, Query
from schema.scalars import SCALARS
from schema.slack_usergroups_types import TYPES as SLACK_USERGROUP_ACTIONS
from schema.subscription import Subscription

log = structlog.get_logger("gateway.graphql")


class GatewaySchema(Schema):
    """The federation schema, logging errors by what they are rather than all as errors."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Unexpected exceptions with their traceback; caller and upstream errors as facts."""
        for error in errors:
            original = error.original_error
            if is_unexpected(error):
                log.error("unexpected error", path=error.path, exc_info=original)
            elif isinstance(original, GatewayError):
                log.info("operation error", code=original.code.value, message=error.message)
            else:
                log.info("invalid request", message=error.message)


def build_schema(
    limits: QueryLimits,
    metrics: GatewayMetrics,
    extra: Sequence[Callable[[], SchemaExtension]] = (),
) -> GatewaySchema:
    """The Federation v2 schema with the limits and metrics of one app (and `extra` extensions).

    The federated copy (README, Federation) has `FederatedExecution` as `extra`, and its
    graphql-core schema is replaced by the merged one; `_service { sdl }` stays gateway-only.
    """
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=SLACK_USERGROUP_ACTIONS,
        config=StrawberryConfig(auto_camel_case=False, scalar_map=SCALARS),
        extensions=[*limit_extensions(limits, metrics, CACHE_BACKED_FIELDS), *extra],
        federation_version="2.7",
    )


def export_sdl(schema: Schema) -> str:
    """The SDL as checked in at schema/schema.graphql."""
    return print_schema(schema) + "\n"
