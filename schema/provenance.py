"""Where each upstream-backed value came from, reported in the response's `extensions`."""

from typing import Any

from graphql import FieldNode, OperationType, get_operation_ast
from strawberry.extensions import SchemaExtension
from strawberry.types import Info

from gateway.cache import CacheLookup
from schema.context import RequestContext


def record(info: Info[RequestContext, Any], lookup: CacheLookup) -> None:
    """Note `lookup` (source, key, hit/miss/stale, age) for this request's `extensions`."""
    info.context.provenance.append(
        {
            "source": lookup.source,
            "key": lookup.key,
            "outcome": lookup.outcome,
            "age_seconds": round(lookup.age_seconds, 3),
        }
    )


class Provenance(SchemaExtension):
    """Adds `extensions.provenance`, and tells the view whether the result may be reused.

    A result may be reused (by `gateway.result_cache`) only for a query whose root fields are
    all in `cache_backed`, and whose every lookup was a fresh hit or miss.
    """

    def __init__(self, cache_backed: frozenset[str]) -> None:
        self.cache_backed = cache_backed

    def get_results(self) -> dict[str, Any]:
        """The lookups recorded in the request context, if any."""
        context = self.execution_context.context
        lookups: list[dict[str, Any]] = getattr(context, "provenance", [])
        if not lookups:
            return {}
        context.result_cacheable = self._only_cache_backed() and all(
            lookup["outcome"] != "stale" for lookup in lookups
        )
        return {"provenance": lookups}

    def _only_cache_backed(self) -> bool:
        document = self.execution_context.graphql_document
        if document is None:
            return False
        operation = get_operation_ast(document, self.execution_context.operation_name)
        if operation is None or operation.operation is not OperationType.QUERY:
            return False
        return all(
            isinstance(node, FieldNode)
            and not node.directives
            and node.name.value in self.cache_backed
            for node in operation.selection_set.selections
        )
