"""Schema extensions: operation metrics and spans, and the safety limits built from settings."""

import time
from collections.abc import Callable, Iterator

from graphql import ASTValidationRule, GraphQLError, OperationDefinitionNode
from graphql.validation import NoSchemaIntrospectionCustomRule
from opentelemetry.trace import SpanKind
from strawberry.extensions import MaskErrors, SchemaExtension

from gateway import tracing
from gateway.graphql_errors import INTERNAL_MESSAGE, is_unexpected
from gateway.metrics import GatewayMetrics
from gateway.settings import QueryLimits
from schema.document_cache import DocumentCache, DocumentStore
from schema.document_limits import NonEmptySelectionSets, document_limits_rule
from schema.provenance import Provenance


class OperationTracing(SchemaExtension):
    """A span per operation, named by its bounded metrics label; installed when tracing is on."""

    def __init__(self, metrics: GatewayMetrics) -> None:
        self.metrics = metrics

    def on_operation(self) -> Iterator[None]:
        """Span the whole operation, parse to (masked) result."""
        with tracing.span("graphql.operation", kind=SpanKind.SERVER) as span:
            yield
            if span is None:
                return
            context = self.execution_context
            try:
                kind = context.operation_type.value
            except RuntimeError:  # the document did not parse, so it has no operation type
                kind = "unknown"
            name = self.metrics.operation_label(context.operation_name)
            errors = context.result.errors if context.result is not None else None
            codes = (
                tracing.error_codes((e.extensions or {}).get("code") for e in errors)
                if errors
                else None
            )
            tracing.describe_operation(span, name, kind, codes)


class GatewayOperation(MaskErrors):
    """Per operation: refuses a document of several operations when `operationName` does not
    pick one, masks unexpected errors, then counts the operation by name, type and outcome and
    times it.

    One extension rather than three: Strawberry wraps every hook of every extension in a
    context manager per operation, so each extension costs every request its share.
    """

    def __init__(self, metrics: GatewayMetrics) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message=INTERNAL_MESSAGE)
        self.metrics = metrics
        self.requested: str | None = None

    def on_operation(self) -> Iterator[None]:
        """Note the requested name (before parsing the context knows only that one), mask the
        result's unexpected errors, count and time the whole operation, parse to result."""
        started = time.perf_counter()
        context = self.execution_context
        self.requested = context.operation_name
        yield from super().on_operation()
        name = self.metrics.operation_label(context.operation_name)
        try:
            kind = context.operation_type.value
        except RuntimeError:  # the document did not parse, so it has no operation type
            kind = "unknown"
        result = context.result
        outcome = "error" if result is not None and result.errors else "ok"
        self.metrics.graphql_operations.labels(name, kind, outcome).inc()
        self.metrics.graphql_latency.labels(kind, outcome).observe(time.perf_counter() - started)

    def on_validate(self) -> Iterator[None]:
        """A request error in place of validation when the operation is ambiguous."""
        document = self.execution_context.graphql_document
        if document is not None and self.requested is None:
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            if len(operations) > 1:
                self.execution_context.pre_execution_errors = [
                    GraphQLError("operationName is required: the document has several operations")
                ]
        yield

    def _process_result(self, result: object) -> None:
        """As MaskErrors, without its runtime Protocol check (a slow `isinstance`)."""
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]


def limit_extensions(
    limits: QueryLimits, metrics: GatewayMetrics, cache_backed: frozenset[str] = frozenset()
) -> list[Callable[[], SchemaExtension]]:
    """Extension factories: spans, caches, limits, masking, metrics, introspection.

    The validation rules and the document store are built once, shared by every request. The
    operation span comes first (outermost: it sees errors as masked) and only when tracing is
    on at schema build time, so with tracing off it costs nothing at all.
    """
    rules: list[type[ASTValidationRule]] = [
        document_limits_rule(limits.max_depth, limits.max_aliases),
        NonEmptySelectionSets,
    ]
    if not limits.introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    documents = DocumentStore(limits.document_cache_entries, limits.document_cache_bytes)
    traced: list[Callable[[], SchemaExtension]] = (
        [lambda: OperationTracing(metrics)] if tracing.enabled() else []
    )
    return [
        *traced,
        lambda: Provenance(cache_backed),
        lambda: DocumentCache(documents, rules, limits.max_tokens),
        lambda: GatewayOperation(metrics),
    ]
