"""The GraphQL contract: types, root operations, extensions; `schema.graphql` is its export."""

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import structlog
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.federation import Schema
from strawberry.federation.schema import FederationAny
from strawberry.printer import print_schema
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, ExecutionResult, Info
from strawberry.types.graphql import OperationType

from gateway.errors import shown
from gateway.graphql_errors import error_code, is_unexpected, map_redis_failures
from gateway.metrics import GatewayMetrics
from gateway.registry import AnySystem
from gateway.settings import QueryLimits
from schema.cached_subtrees import CachedSubtreeExecution
from schema.entities import Entity, entity_table, resolve_entities
from schema.extensions import limit_extensions
from schema.mutation import GatewayMutation
from schema.query import GatewayQuery, TaskQuery
from schema.scalars import SCALARS
from schema.subscription import Subscription

log = structlog.get_logger("gateway.graphql")
LOGGED_TRACEBACKS = 5


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
        """One log line per request for caller and upstream errors (counts by code and the
        first message), however many list items failed; unexpected exceptions with their
        traceback, the first few of them. Redis failures are mapped first (see
        `map_redis_failures`)."""
        map_redis_failures(errors)
        codes: Counter[str] = Counter()
        first = ""
        unexpected = 0
        for error in errors:
            if is_unexpected(error):
                unexpected += 1
                if unexpected <= LOGGED_TRACEBACKS:
                    log.error("unexpected error", path=error.path, exc_info=error.original_error)
                continue
            codes[error_code(error).value] += 1
            first = first or error.message
        if unexpected > LOGGED_TRACEBACKS:
            log.error("more unexpected errors", count=unexpected - LOGGED_TRACEBACKS)
        if codes:
            log.info("operation errors", codes=dict(codes), first=shown(first, 200))


def root_types(systems: Sequence[AnySystem]) -> tuple[type, type]:
    """Query and Mutation: the gateway's own fields, then each system's, in `systems` order."""
    parts = [system.graphql for system in systems]
    # A part shared by systems (VcsQuery: GitHub and GitLab) joins once, where first named.
    queries = dict.fromkeys([GatewayQuery, *(q for p in parts for q in p.queries), TaskQuery])
    mutations = dict.fromkeys([GatewayMutation, *(m for p in parts for m in p.mutations)])
    return merge_types("Query", tuple(queries)), merge_types("Mutation", tuple(mutations))


def build_schema(
    limits: QueryLimits,
    metrics: GatewayMetrics,
    systems: Sequence[AnySystem],
    extra: Sequence[Callable[[], SchemaExtension]] = (),
) -> GatewaySchema:
    """The Federation v2 schema of `systems` with the limits and metrics of one app (and `extra`
    extensions).

    The federated copy (README, Federation) has `FederatedExecution` as `extra`, and its
    graphql-core schema is replaced by the merged one; `_service { sdl }` stays gateway-only.
    """
    query, mutation = root_types(systems)
    cache_backed = frozenset().union(*(system.graphql.cache_backed for system in systems))
    return GatewaySchema(
        query=query,
        mutation=mutation,
        subscription=Subscription,
        types=[t for system in systems for t in system.graphql.types],
        config=StrawberryConfig(auto_camel_case=False, scalar_map=SCALARS),
        extensions=[*limit_extensions(limits, metrics, cache_backed), *extra],
        federation_version="2.7",
        max_representations=limits.max_entity_representations,
        execution_context_class=CachedSubtreeExecution,
    )


def export_sdl(schema: Schema) -> str:
    """The SDL as checked in at schema/schema.graphql."""
    return print_schema(schema) + "\n"
