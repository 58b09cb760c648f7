"""The GraphQL contract: types, root operations, extensions; `schema.graphql` is its export."""

import structlog
from graphql import GraphQLError
from strawberry.federation import Schema
from strawberry.printer import print_schema
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from gateway.errors import GatewayError
from gateway.graphql_errors import is_unexpected
from gateway.metrics import GatewayMetrics
from gateway.settings import QueryLimits
from schema.extensions import limit_extensions
from schema.query import Query
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


def build_schema(limits: QueryLimits, metrics: GatewayMetrics) -> GatewaySchema:
    """The Federation v2 schema with the limits and metrics of one app."""
    return GatewaySchema(
        query=Query,
        subscription=Subscription,
        config=StrawberryConfig(auto_camel_case=False),
        extensions=limit_extensions(limits, metrics),
        federation_version="2.7",
    )


def export_sdl(schema: Schema) -> str:
    """The SDL as checked in at schema/schema.graphql."""
    return print_schema(schema) + "\n"
