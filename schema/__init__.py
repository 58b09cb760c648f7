"""The GraphQL contract: types, root operations, extensions; `schema.graphql` is its export."""

from typing import Any

import structlog
from graphql import GraphQLError
from strawberry.federation import Schema
from strawberry.federation.schema import FederationAny
from strawberry.printer import print_schema
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, Info

from gateway.errors import GatewayError
from gateway.graphql_errors import is_unexpected
from gateway.metrics import GatewayMetrics
from gateway.settings import QueryLimits
from schema.entities import Entity, entity_table, resolve_entities
from schema.extensions import limit_extensions
from schema.mutation import Mutation
from schema.query import CACHE_BACKED_FIELDS, Query
from schema.scalars import SCALARS
from schema.slack_usergroups_types import TYPES as SLACK_USERGROUP_ACTIONS
from schema.subscription import Subscription

log = structlog.get_logger("gateway.graphql")


class GatewaySchema(Schema):
    """The federation schema: checked `_entities`, errors logged by what they are."""

    def __init__(
        self,
        *args: Any,
        max_representations: int = QueryLimits().max_entity_representations,
        **kwargs: Any,
    ) -> None:
        self.max_representations = max_representations
        super().__init__(*args, **kwargs)
        self.entities: dict[str, Entity] = entity_table(self.schema_converter.type_map)

    def entities_resolver(
        self, info: Info, representations: list[FederationAny]
    ) -> list[FederationAny]:
        """`_entities`: each representation checked, then resolved through the loaders."""
        items = resolve_entities(info, representations, self.entities, self.max_representations)
        return [FederationAny(item) for item in items]

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
        mutation=Mutation,
        subscription=Subscription,
        types=SLACK_USERGROUP_ACTIONS,
        config=StrawberryConfig(auto_camel_case=False, scalar_map=SCALARS),
        extensions=limit_extensions(limits, metrics, CACHE_BACKED_FIELDS),
        federation_version="2.7",
        max_representations=limits.max_entity_representations,
    )


def export_sdl(schema: Schema) -> str:
    """The SDL as checked in at schema/schema.graphql."""
    return print_schema(schema) + "\n"
