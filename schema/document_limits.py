"""Validation rules of the gateway: depth and alias limits in linear time, no empty selection."""

from collections import Counter
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
)
from graphql.language.visitor import SKIP, VisitorAction

_COUNT_CAP = 2**63
_Cost = tuple[int, int]


@dataclass
class _Definition:
    """One operation or fragment read once: its own depth and aliases, and what it spreads."""

    levels: int = 0
    aliases: int = 0
    spreads_at: list[tuple[str, int]] = field(default_factory=list)
    spread_counts: Counter[str] = field(default_factory=Counter)


def _summarise(definition: OperationDefinitionNode | FragmentDefinitionNode) -> _Definition:
    """Walk the definition's selections once, without recursion.

    Every alias counts; a field's depth counts unless it is under an introspection field, and
    so does the depth a fragment is spread at.
    """
    summary = _Definition()
    pending: list[tuple[SelectionSetNode, int, bool]] = [(definition.selection_set, 0, False)]
    while pending:
        selection_set, nesting, ignored = pending.pop()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if selection.alias:
                    summary.aliases += 1
                below = (nesting, True)
                if not ignored:
                    summary.levels = max(summary.levels, nesting + 1)
                    if not selection.name.value.startswith("__"):
                        below = (nesting + 1, False)
                if selection.selection_set is not None:
                    pending.append((selection.selection_set, *below))
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                summary.spread_counts[name] += 1
                if not ignored:
                    summary.spreads_at.append((name, nesting))
            elif isinstance(selection, InlineFragmentNode):
                pending.append((selection.selection_set, nesting, ignored))
    return summary


def document_limits_rule(max_depth: int, max_aliases: int) -> type[ValidationRule]:
    """A rule refusing operations nested deeper than `max_depth` or with over `max_aliases`.

    Depth counts field levels below the root (introspection fields are not entered), aliases
    count once per spread of the fragment holding them. Each fragment is measured once; an
    unknown fragment counts as empty and a fragment cycle skips the check (graphql-core's own
    KnownFragmentNames and NoFragmentCycles report those).
    """

    class DocumentLimits(ValidationRule):
        """Depth and alias limits, measured once per definition."""

        def enter_document(self, node: DocumentNode, *_: Any) -> VisitorAction:
            operations = _measure(node)
            if operations is None:
                return SKIP
            total_aliases = 0
            for operation, (levels, aliases) in operations:
                total_aliases = min(total_aliases + aliases, _COUNT_CAP)
                if levels - 1 > max_depth:
                    name = operation.name.value if operation.name else "anonymous"
                    self.report_error(
                        GraphQLError(
                            f"'{name}' exceeds maximum operation depth of {max_depth}",
                            operation,
                        )
                    )
            if total_aliases > max_aliases:
                self.report_error(
                    GraphQLError(f"{total_aliases} aliases found. Allowed: {max_aliases}")
                )
            return SKIP

    return DocumentLimits


class NonEmptySelectionSets(ValidationRule):
    """Refuses `{}`: the grammar asks for at least one selection, graphql-core parses none."""

    def enter_selection_set(self, node: SelectionSetNode, *_: Any) -> None:
        """Report a selection set without selections."""
        if not node.selections:
            self.report_error(GraphQLError("A selection set must select at least one field", node))


def _measure(document: DocumentNode) -> list[tuple[OperationDefinitionNode, _Cost]] | None:
    """(levels, aliases) of every operation, or None when fragments form a cycle."""
    operations: list[tuple[OperationDefinitionNode, _Definition]] = []
    fragments: dict[str, _Definition] = {}
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode | FragmentDefinitionNode):
            summary = _summarise(definition)
            if isinstance(definition, OperationDefinitionNode):
                operations.append((definition, summary))
            else:
                fragments.setdefault(definition.name.value, summary)
    graph = {
        name: [spread for spread in summary.spread_counts if spread in fragments]
        for name, summary in fragments.items()
    }
    costs: dict[str, _Cost] = {}
    try:
        for name in TopologicalSorter(graph).static_order():
            costs[name] = _cost(fragments[name], costs)
    except CycleError:
        return None
    return [(operation, _cost(summary, costs)) for operation, summary in operations]


def _cost(summary: _Definition, fragments: dict[str, _Cost]) -> _Cost:
    """A definition's (levels, aliases) given those of the fragments it spreads."""
    levels = summary.levels
    for name, nesting in summary.spreads_at:
        levels = max(levels, nesting + fragments.get(name, (0, 0))[0])
    aliases = summary.aliases
    for name, count in summary.spread_counts.items():
        aliases = min(aliases + count * fragments.get(name, (0, 0))[1], _COUNT_CAP)
    return levels, aliases
