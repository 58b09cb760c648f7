"""Schema extensions: operation metrics, and the safety limits built from settings."""

import time
from collections.abc import Callable, Iterator

from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)

from gateway.graphql_errors import INTERNAL_MESSAGE, is_unexpected
from gateway.metrics import GatewayMetrics
from gateway.settings import QueryLimits
from schema.provenance import Provenance


class OperationMetrics(SchemaExtension):
    """Counts each operation by name, type and outcome, and times it."""

    def __init__(self, metrics: GatewayMetrics) -> None:
        self.metrics = metrics

    def on_operation(self) -> Iterator[None]:
        """Measure the whole operation, parse to result."""
        started = time.perf_counter()
        yield
        context = self.execution_context
        name = self.metrics.operation_label(context.operation_name)
        try:
            kind = context.operation_type.value
        except RuntimeError:  # the document did not parse, so it has no operation type
            kind = "unknown"
        result = context.result
        outcome = "error" if result is not None and result.errors else "ok"
        self.metrics.graphql_operations.labels(name, kind, outcome).inc()
        self.metrics.graphql_latency.labels(kind, outcome).observe(time.perf_counter() - started)


def limit_extensions(
    limits: QueryLimits, metrics: GatewayMetrics, cache_backed: frozenset[str] = frozenset()
) -> list[Callable[[], SchemaExtension]]:
    """Extension factories: caches, depth/alias/token limits, masking, metrics, introspection.

    The validation rules are built once: ValidationCache keys on them, so rule classes made
    per request (as QueryDepthLimiter and MaxAliasesLimiter do) would defeat the cache.
    """
    rules = [
        *QueryDepthLimiter(max_depth=limits.max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=limits.max_aliases).validation_rules,
    ]
    if not limits.introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    return [
        lambda: OperationMetrics(metrics),
        lambda: Provenance(cache_backed),
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        lambda: ParserCache(maxsize=limits.parser_cache_size),
        lambda: AddValidationRules(rules),
        lambda: ValidationCache(maxsize=limits.validation_cache_size),
        lambda: MaskErrors(should_mask_error=is_unexpected, error_message=INTERNAL_MESSAGE),
    ]
