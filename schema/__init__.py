"""The GraphQL contract: types, root operations, extensions; `schema.graphql` is its export."""

from collections.abc import Iterable
from typing import Any

import structlog
from graphql import GraphQLError
from strawberry.federation import Schema
from strawberry.printer import print_schema
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from gateway.errors import GatewayError
from gateway.graphql_errors import bounded, is_unexpected
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

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """As Strawberry, but a subscription is refused: it streams over WebSocket only."""
        allowed = set(allowed_operation_types or OperationType) - {OperationType.SUBSCRIPTION}
        return await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed,
            operation_extensions,
        )

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Unexpected exceptions with their traceback; caller and upstream errors as facts."""
        for error in errors:
            original = error.original_error
            if is_unexpected(error):
                log.error("unexpected error", path=error.path, exc_info=original)
            elif isinstance(original, GatewayError):
                log.info(
                    "operation error", code=original.code.value, message=bounded(error.message)
                )
            else:
                log.info("invalid request", message=bounded(error.message))


def build_schema(limits: QueryLimits, metrics: GatewayMetrics) -> GatewaySchema:
    """The Federation v2 schema with the limits and metrics of one app."""
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=SLACK_USERGROUP_ACTIONS,
        config=StrawberryConfig(auto_camel_case=False, scalar_map=SCALARS),
        extensions=limit_extensions(limits, metrics, CACHE_BACKED_FIELDS),
        federation_version="2.7",
    )


def export_sdl(schema: Schema) -> str:
    """The SDL as checked in at schema/schema.graphql."""
    return print_schema(schema) + "\n"
